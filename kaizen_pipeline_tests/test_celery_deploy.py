"""The PostgreSQL + Celery deploy profile, for real: main_job's steps run on two Celery workers.

Two workers are started with dagster-celery's CLI (their own DAGSTER_HOME with
deploy/dagster.postgres-celery.yaml on a PostgreSQL database of this test), RabbitMQ on 127.0.0.1
as the broker, the warehouse on another PostgreSQL database; then the same job with the same
settings runs in process into a third database, and every warehouse table must be equal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from kaizen_pipeline.definitions import build_defs, celery_executor_def
from kaizen_pipeline.ops.executors import celery_executor_config
from kaizen_pipeline.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
# databases of this test only, dropped and created again on every run
INSTANCE_DB, CELERY_DB, IN_PROCESS_DB = "kaizen_celery_test", "kaizen_celery_wh", "kaizen_celery_wh_inproc"
WORLD = {
    "KAIZEN_DEMO__FROZEN_NOW": "2026-02-01T00:00:00Z",
    # a smaller world keeps both runs short
    "KAIZEN_DEMO__N_MARKETS": "10",
    "KAIZEN_DATA_COLLECTION__MAX_MARKETS": "10",
}
WORKERS = 2
WORKER_START_SECONDS = 90
RUN_SECONDS = 900
# Columns that differ between any two runs of the same job on the same frozen world (found by
# running this test); every other column of every table must be equal.
# computed_at / collected_at / generated_at: when the row was written, on the wall clock (the demo's
# frozen clock sets the data's time, not these); run_id: the Dagster run that wrote the row;
# ingestion_runs.finished_at: the frozen start plus the ingest's measured duration.
_WRITTEN_AT = {"computed_at"}
PER_RUN_COLUMNS: dict[str, set[str]] = {
    **{
        table: _WRITTEN_AT
        for table in (
            "bottleneck",
            "hype_lead_estimates",
            "hype_price_correlations",
            "hype_scores",
            "market_features",
            "recommendations",
            "resource_plan",
            "risk_state",
            "signal_calibration",
            "trading_signals",
        )
    },
    "kaizen_metrics": {"collected_at"},
    "kaizen_reports": {"generated_at"},
    "ingestion_runs": {"run_id", "finished_at"},
    "rejected_records": {"run_id"},
}


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
    return False


def _skip_reason() -> str | None:
    try:
        import dagster_celery  # noqa: F401
    except ImportError:
        return 'dagster-celery is not installed (pip install -e ".[celery]")'
    if not _port_open(5672):
        return "RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)"
    if not _port_open(5432):
        return "PostgreSQL is not listening on 127.0.0.1:5432 (.ci/run starts it)"
    return None


def _fresh_database(name: str) -> str:
    """Drop and create ``name`` on the local server (trust auth); its SQLAlchemy URL."""
    admin = sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{SERVER}/{name}"


def celery_main_job() -> dg.JobDefinition:
    """main_job as the code location builds it from the environment's settings.

    The run in this process and every worker call it (a reconstructable job): the same KAIZEN_*
    environment gives them the same settings, execution.executor celery included.
    """
    return build_defs(load_settings()).resolve_job_def("main_job")


def _home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with deploy/dagster.postgres-celery.yaml, its local storage under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    text = (REPO / "deploy" / "dagster.postgres-celery.yaml").read_text()
    text = re.sub(r"base_dir: data/dagster", f"base_dir: {home / 'storage'}", text)
    assert str(home) in text, "the deploy profile's base_dir changed: update this test"
    (home / "dagster.yaml").write_text(text)
    return home


def _stop(proc: subprocess.Popen) -> None:
    """Stop a worker and every process it started (its own session: the Celery pool too)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # pool processes left in the group


@contextlib.contextmanager
def _workers(home: Path, queue: str, tmp_path: Path) -> Iterator[list[Path]]:
    """WORKERS Celery workers listening on ``queue``, started with dagster-celery's CLI; their logs."""
    config = tmp_path / "celery-worker.yaml"
    # the deploy profile's -y file, with the broker and backend these settings use
    settings = load_settings()
    config.write_text(
        "execution:\n  config:\n"
        f"    broker: {settings.execution.celery_broker_url!r}\n"
        f"    backend: {settings.execution.celery_backend_url!r}\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # dagster-celery starts `celery` from PATH: this venv's, as an activated venv would
    env["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    # the workers import this module (celery_main_job) and the package from the repository
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    procs: list[subprocess.Popen] = []
    logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
    try:
        for i, log in enumerate(logs):
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            str(BIN / "dagster-celery"),
                            "worker",
                            "start",
                            "-A",
                            "dagster_celery.app",
                            "-y",
                            str(config),
                            "-q",
                            queue,
                            "-n",
                            f"kaizen-test-{i}-{queue}",
                            "--",
                            "--concurrency=2",
                        ],  # fmt: skip
                        cwd=REPO,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: _stop reaches the pool
                    )
                )
        deadline = time.monotonic() + WORKER_START_SECONDS
        while not all(" ready." in log.read_text() for log in logs):
            dead = [p.args for p in procs if p.poll() is not None]
            assert not dead, f"a worker exited: {dead}\n" + "\n".join(log.read_text()[-2000:] for log in logs)
            assert time.monotonic() < deadline, "workers not ready in time:\n" + "\n".join(
                log.read_text()[-2000:] for log in logs
            )
            time.sleep(0.5)
        yield logs
    finally:
        for proc in procs:
            _stop(proc)
        _delete_queue(settings.execution.celery_broker_url, queue)


def _delete_queue(broker: str, queue: str) -> None:
    """Remove this test's queue from the shared broker (Celery declares it durable: it would stay)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(broker, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(queue)


def _tables(url: str) -> dict[str, pd.DataFrame]:
    """Every table of the warehouse at ``url``, rows sorted, per-run columns dropped."""
    engine = sa.create_engine(url)
    try:
        names = sa.inspect(engine).get_table_names()
        frames = {}
        with engine.connect() as conn:
            for name in sorted(names):
                frame = pd.read_sql_table(name, conn)
                frame = frame.drop(columns=sorted(PER_RUN_COLUMNS.get(name, set()) & set(frame.columns)))
                frame = frame[sorted(frame.columns)]
                frames[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        return frames
    finally:
        engine.dispose()


@pytest.mark.slow
# dagster-celery registers its step task again for every step it submits; Celery warns each time
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_main_job_on_two_celery_workers_equals_the_in_process_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    home = _home(tmp_path)
    queue = f"kaizen-test-{uuid.uuid4().hex[:8]}"  # a queue of our own on the shared broker
    for key, value in WORLD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("KAIZEN_DAGSTER_POSTGRES_URL", _fresh_database(INSTANCE_DB))
    monkeypatch.setenv("KAIZEN_EXECUTION__EXECUTOR", "celery")
    monkeypatch.setenv("KAIZEN_EXECUTION__CELERY_QUEUE", queue)
    celery_url = _fresh_database(CELERY_DB)
    monkeypatch.setenv("KAIZEN_DATABASE__URL", celery_url)
    assert celery_main_job().executor_def.name == "celery"

    # the instance's tables are created here, once, before two workers open it at the same time
    with dg.DagsterInstance.get() as instance, _workers(home, queue, tmp_path) as logs:
        result = _with_deadline(
            lambda: dg.execute_job(dg.reconstructable(celery_main_job), instance=instance), RUN_SECONDS
        )
        assert result.success, "\n".join(log.read_text()[-3000:] for log in logs)
        hosts = {
            e.engine_event_data.metadata["Celery worker"].value
            for e in result.all_events
            if e.is_engine_event and e.engine_event_data and "Celery worker" in e.engine_event_data.metadata
        }
        assert len(hosts) == WORKERS, f"steps ran on {hosts}, not on both workers"
    celery_seconds = time.monotonic() - started

    # the same job, the same settings, in process, into its own warehouse
    in_process_url = _fresh_database(IN_PROCESS_DB)
    monkeypatch.setenv("KAIZEN_DATABASE__URL", in_process_url)
    in_process_started = time.monotonic()
    in_process = _with_deadline(
        lambda: celery_main_job().execute_in_process(instance=dg.DagsterInstance.ephemeral()), RUN_SECONDS
    )
    assert in_process.success
    in_process_seconds = time.monotonic() - in_process_started

    celery_tables, in_process_tables = _tables(celery_url), _tables(in_process_url)
    assert sorted(celery_tables) == sorted(in_process_tables)
    assert any(len(frame) for frame in celery_tables.values())
    differ = []
    for name, frame in celery_tables.items():
        try:
            pd.testing.assert_frame_equal(frame, in_process_tables[name], check_exact=False, rtol=1e-9)
        except AssertionError as exc:
            differ.append(f"{name}: {str(exc)[:600]}")
    assert differ == [], "tables differ between the Celery and the in-process run:\n" + "\n".join(differ)
    print(
        f"celery (workers' start + run) {celery_seconds:.0f} s, in process {in_process_seconds:.0f} s, "
        f"whole test {time.monotonic() - started:.0f} s"
    )


def _with_deadline(fn, seconds: float):  # noqa: ANN001, ANN202
    """``fn()``, failing the test (not hanging) if it takes longer than ``seconds``."""

    def _expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# The executor's config from settings (fast: no broker needed).


def test_celery_executor_config_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_EXECUTION__CELERY_QUEUE", "kaizen-a")
    assert celery_executor_config(load_settings()) == {
        "broker": "pyamqp://guest@127.0.0.1//",
        "backend": "rpc://",
        "config_source": {"task_default_queue": "kaizen-a"},
    }


def test_a_broker_password_comes_from_the_environment_only(
    kaizen_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "pyamqp://kaizen:s3cret-77@127.0.0.1:5672//"
    (kaizen_env / "config.yaml").write_text(f"execution:\n  celery_broker_url: {url!r}\n")
    with pytest.raises(ConfigError, match="a password belongs in KAIZEN_EXECUTION__CELERY_BROKER_URL") as err:
        celery_executor_config(load_settings())
    assert "s3cret-77" not in str(err.value)
    # from its variable: the executor config names the variable, never the password
    monkeypatch.setenv("KAIZEN_EXECUTION__CELERY_BROKER_URL", url)
    config = celery_executor_config(load_settings())
    assert config["broker"] == {"env": "KAIZEN_EXECUTION__CELERY_BROKER_URL"}
    assert "s3cret-77" not in str(config)


def test_the_celery_executor_wires_every_job(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "dagster_celery", reason='the celery extra is not installed (pip install -e ".[celery]")'
    )
    monkeypatch.setenv("KAIZEN_EXECUTION__EXECUTOR", "celery")
    assert celery_executor_def(load_settings()).name == "celery"
    assert celery_main_job().executor_def.name == "celery"


def test_without_the_extra_the_error_names_the_key_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dagster_celery", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"execution.executor: celery needs the celery extra.*\.\[celery\]"):
        celery_executor_def(load_settings())
