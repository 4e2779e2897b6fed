"""kaizen_pipeline: a self-improving Dagster pipeline for prediction-market research."""

__version__ = "0.1.0"
