"""The ``flags_evaluated`` check an asset carries when it reads per-unit parameters through flags."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

FLAGS_EVALUATED = "flags_evaluated"


def flags_evaluated_spec(asset: str) -> dg.AssetCheckSpec:
    """Fails (WARN, so the alert sensor emails) when a flag fell back to its config value with reason ERROR."""
    return dg.AssetCheckSpec(
        FLAGS_EVALUATED,
        asset=asset,
        description="Every feature flag this asset read was evaluated; a flag that errored fell back to config.",
    )


def flags_evaluated_result(asset: str, errors: Sequence[str]) -> dg.AssetCheckResult:
    """The check's result for the errors ``SettingsResource.flag_errors()`` reported."""
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=FLAGS_EVALUATED,
        passed=not errors,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "errors": dg.MetadataValue.int(len(errors)),
            "detail": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "_none_"),
        },
    )
