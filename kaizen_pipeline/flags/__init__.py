"""Feature flags: deterministic per-unit variants (the flags and experiments issue builds on this)."""
