"""Kaizen loop: metrics, targets, forecasts, bottleneck, improvements, experiments, flags."""
