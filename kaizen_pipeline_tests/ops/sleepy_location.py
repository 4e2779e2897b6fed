"""A code location for the run-monitoring test: one job that sleeps until killed, with a short max runtime."""

import time

import dagster as dg

# Short so the test stays bounded, long enough for four runs to start on a loaded 2-core machine; the project's jobs get ops.max_runtime_seconds instead.
MAX_RUNTIME_SECONDS = 60


@dg.op
def nap() -> None:
    time.sleep(300)


@dg.job(tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)}, description="Sleeps until killed.")
def sleepy_job() -> None:
    nap()


defs = dg.Definitions(jobs=[sleepy_job])
