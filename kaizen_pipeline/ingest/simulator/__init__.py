"""The demo simulator: a seeded world (``world``), its text (``corpus``), its HTTP API (``api``), a real server (``server``).

Import each name from its module, e.g. ``from kaizen_pipeline.ingest.simulator.world import DemoWorld``.
"""
