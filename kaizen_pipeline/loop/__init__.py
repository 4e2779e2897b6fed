"""The loop's own controls: what it did (decision_log), what it may do alone, and the human override."""
