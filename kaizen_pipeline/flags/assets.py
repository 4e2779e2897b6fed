"""The feature_flags asset: every flag, its split and the units exposed per variant (thin wiring)."""

from __future__ import annotations

import dagster as dg

from kaizen_pipeline.flags.model import validate_flag
from kaizen_pipeline.flags.parameters import FlagValueError
from kaizen_pipeline.flags.store import FlagStore, flags_frame
from kaizen_pipeline.reporting import markdown_table
from kaizen_pipeline.resources import SettingsResource, WarehouseResource

GROUP = "flags"


@dg.asset(group_name=GROUP, kinds={"openfeature"})
def feature_flags(warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
    """Every feature flag: parameter, unit, status, split and units per variant; changed with `kaizen flags`."""
    wh = warehouse.get()
    current = settings.get()
    store = FlagStore(wh)
    flags = store.list()
    exposures = wh.read_frame("SELECT flag_key, unit_id, variant FROM flag_assignments")
    invalid = {}
    for flag in flags:
        if flag.status == "active":
            try:
                validate_flag(flag, current)
            except FlagValueError as exc:
                invalid[flag.flag_key] = str(exc)
    changes = store.changes().tail(15)
    return dg.MaterializeResult(
        metadata={
            "active": dg.MetadataValue.int(sum(f.status == "active" for f in flags)),
            "flags": dg.MetadataValue.int(len(flags)),
            "units_exposed": dg.MetadataValue.int(
                int(exposures["unit_id"].nunique()) if not exposures.empty else 0
            ),
            "table": dg.MetadataValue.md(markdown_table(flags_frame(flags, exposures), max_rows=50)),
            "invalid_served_as_config": dg.MetadataValue.md(
                "\n".join(f"- {k}: {v}" for k, v in invalid.items()) or "_none_"
            ),
            "recent_changes": dg.MetadataValue.md(
                markdown_table(changes[["changed_at", "flag_key", "actor", "action", "reason"]])
                if not changes.empty
                else "_none_"
            ),
        }
    )
