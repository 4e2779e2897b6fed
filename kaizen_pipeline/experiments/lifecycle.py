"""The states an experiment moves through (dependency-free: the CLI builds its options from them)."""

STATUSES = ("draft", "running", "stopped", "shipped", "inconclusive", "invalid")
TERMINAL = frozenset({"stopped", "shipped", "inconclusive", "invalid"})
