"""Controlled experiments: every improvement tested against a concurrent control before it ships."""
