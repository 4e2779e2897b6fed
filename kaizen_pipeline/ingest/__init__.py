"""Ingest: API clients, the shared transport, the demo simulator, assets and checks."""
