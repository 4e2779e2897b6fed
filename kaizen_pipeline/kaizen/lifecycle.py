"""The states a logged improvement moves through (dependency-free: the CLI builds its options from them)."""

IMPROVEMENT_STATUSES = ("proposed", "in_progress", "shipped", "abandoned")
