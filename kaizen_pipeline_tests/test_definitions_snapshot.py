"""The code location as a reviewable text listing: assets, checks, jobs, schedules and sensors.

A change to what the UI shows (a renamed asset, a new group, a moved schedule, a job's selection)
shows up as a diff of snapshots/definitions.txt in the pull request. After an intended change:

    KAIZEN_UPDATE_SNAPSHOTS=1 python -m pytest kaizen_pipeline_tests/test_definitions_snapshot.py
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from kaizen_pipeline.definitions import build_defs
from kaizen_pipeline.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def _keys(keys: object) -> str:
    return ", ".join(sorted(k.to_user_string() for k in keys)) or "-"  # type: ignore[attr-defined]


def _checks(keys: object) -> str:
    return ", ".join(sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in keys)) or "-"  # type: ignore[attr-defined]


def definitions_listing(defs: dg.Definitions) -> str:
    """Sorted sections, one line per definition; stable across runs and machines."""
    graph = defs.resolve_asset_graph()
    assets = sorted(
        f"{k.to_user_string()}  group={graph.get(k).group_name}  kinds={','.join(sorted(graph.get(k).kinds)) or '-'}"
        for k in graph.get_all_asset_keys()
    )
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    jobs = []
    for job in defs.jobs or []:
        if isinstance(job, dg.JobDefinition):
            jobs.append(f"{job.name}  ops={', '.join(sorted(n.name for n in job.graph.node_defs))}")
        else:
            jobs.append(
                f"{job.name}  assets={_keys(job.selection.resolve(graph))}"
                f"  checks={_checks(job.selection.resolve_checks(graph))}"
            )
    schedules = sorted(
        f"{s.name}  job={s.job_name}  cron={s.cron_schedule}  tz={s.execution_timezone or '-'}"
        f"  default={s.default_status.value}"
        for s in defs.schedules or []
    )
    sensors = sorted(
        f"{s.name}  jobs={', '.join(sorted(j.name for j in s.jobs)) if s.has_jobs else '-'}"
        f"  default={s.default_status.value}"
        for s in defs.sensors or []
    )
    sections = {
        "assets": assets,
        "asset checks": checks,
        "jobs": sorted(jobs),
        "schedules": schedules,
        "sensors": sensors,
    }
    return "".join(
        f"# {name} ({len(lines)})\n" + "".join(f"{line}\n" for line in lines) + "\n"
        for name, lines in sections.items()
    )


def test_definitions_match_the_snapshot(update_snapshots: bool) -> None:
    listing = definitions_listing(build_defs(Settings()))
    if update_snapshots or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(listing)
    assert listing == SNAPSHOT.read_text(), (
        "the definitions changed: review the diff, then KAIZEN_UPDATE_SNAPSHOTS=1 to accept it"
    )
