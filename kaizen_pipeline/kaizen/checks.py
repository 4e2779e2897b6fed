"""Metric-deviation checks: one per registered metric on kaizen_metrics (critical metrics fail with ERROR)."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from kaizen_pipeline.kaizen import store
from kaizen_pipeline.kaizen.registry import evaluate
from kaizen_pipeline.resources import SettingsResource, WarehouseResource
from kaizen_pipeline.settings import KaizenSettings

ASSET = dg.AssetKey("kaizen_metrics")


def check_name(metric: str) -> str:
    return f"{metric}_deviation"


def build_deviation_checks(ks: KaizenSettings) -> dg.AssetChecksDefinition:
    """One AssetCheckSpec per registered metric, evaluated together from the warehouse."""
    specs = [
        dg.AssetCheckSpec(
            name=check_name(m.name),
            asset=ASSET,
            description=(
                f"{m.description or m.name}: deviates when {'below' if m.direction == 'higher' else 'above'} "
                f"{'kaizen.deviation_factor x target' if m.direction == 'higher' else 'target / kaizen.deviation_factor'}"
                f" (target: this metric's kaizen.metrics target, now {m.target:g} {m.unit})."
            ),
            metadata={"metric": m.name, "severity": m.severity, "priority": m.severity, "owner": m.owner},
        )
        for m in ks.metrics
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="metric_deviation_checks")
    def metric_deviation_checks(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
    ) -> Iterator[dg.AssetCheckResult]:
        """Compares each metric's newest value with its deviation line; value, target and deviation in metadata."""
        kaizen = settings.get().kaizen
        by_name = {m.name: m for m in kaizen.metrics}
        latest = store.latest_values(store.metric_history(warehouse.get()))
        values = {row.metric: (row.value, row.ts) for row in latest.itertuples(index=False)}
        for key in context.selected_asset_check_keys:
            metric = key.name.removesuffix("_deviation")
            spec = by_name.get(metric)
            if spec is None:  # removed from config since the definitions were loaded
                yield dg.AssetCheckResult(check_name=key.name, asset_key=ASSET, passed=True,
                                          metadata={"status": "metric no longer registered"})  # fmt: skip
                continue
            severity = (
                dg.AssetCheckSeverity.ERROR if spec.severity == "critical" else dg.AssetCheckSeverity.WARN
            )
            base = {"metric": metric, "severity": spec.severity, "priority": spec.severity, "owner": spec.owner,
                    "target": spec.target, "unit": spec.unit, "direction": spec.direction}  # fmt: skip
            if metric not in values:
                yield dg.AssetCheckResult(
                    check_name=key.name, asset_key=ASSET, passed=True, severity=severity,
                    metadata=base | {"status": "no value recorded yet"},
                    description="no value recorded yet: nothing to compare",
                )  # fmt: skip
                continue
            value, ts = values[metric]
            verdict = evaluate(spec, float(value), kaizen.deviation_factor)
            yield dg.AssetCheckResult(
                check_name=key.name,
                asset_key=ASSET,
                passed=not verdict.deviates,
                severity=severity,
                metadata=base | verdict.as_metadata() | {"day": f"{pd.Timestamp(ts):%Y-%m-%d}"},
                description=(
                    f"{metric} = {value:.4g} {spec.unit} on {pd.Timestamp(ts):%Y-%m-%d}: "
                    f"{'beyond' if verdict.deviates else 'within'} the deviation line {verdict.line:.4g} "
                    f"(target {spec.target:g})"
                ),
            )

    return metric_deviation_checks
