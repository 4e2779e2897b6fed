"""Kaizen loop: metrics, targets, forecasts, bottleneck, improvements, recommendations, plans, feedback."""
