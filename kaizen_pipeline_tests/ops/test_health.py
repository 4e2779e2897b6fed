"""Health monitor: probes, the health_report asset and its checks, corruption detection with restore advice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from kaizen_pipeline.ops import health
from kaizen_pipeline.ops.assets import OPS_ASSETS
from kaizen_pipeline.ops.sensors import build_alert_sensor
from kaizen_pipeline.resources import build_resources
from kaizen_pipeline.settings import Settings, load_settings
from kaizen_pipeline.warehouse import Warehouse, utcnow
from kaizen_pipeline.warehouse.backup.sqlite import backup_sqlite, sqlite_path
from kaizen_pipeline_tests.smtp import SmtpServer, free_port

GB = 1024**3
BEARER = "x-bearer-Secret-123456"


def test_warehouse_size_warns_above_warn_and_errors_above_max() -> None:
    assert health.probe_warehouse_size(3 * GB, 4, 5).status == "ok"
    assert health.probe_warehouse_size(int(4.5 * GB), 4, 5).status == "warn"
    assert health.probe_warehouse_size(6 * GB, 4, 5).status == "error"


def test_price_freshness() -> None:
    now = datetime(2026, 3, 1, 12, 0)
    assert health.probe_price_freshness(now - timedelta(minutes=10), now, 30, "ts").status == "ok"
    stale = health.probe_price_freshness(now - timedelta(minutes=45), now, 30, "ts")
    assert stale.status == "warn" and stale.value == 45.0
    assert health.probe_price_freshness(None, now, 30, "ts").status == "warn"


def test_free_disk_threshold(tmp_path: Path) -> None:
    assert health.probe_free_disk([tmp_path / "not" / "yet"], 0).status == "ok"
    low = health.probe_free_disk([tmp_path], 10**12)  # a petabyte free: no machine has that
    assert low.status == "error" and "ops.min_free_disk_mb" in low.detail


def test_daemon_and_schedule_probes() -> None:
    assert health.probe_daemon([], ephemeral=True).status == "skipped"
    dead = health.probe_daemon([health.DaemonState("SENSOR", False, 900.0)], ephemeral=False)
    assert dead.status == "warn" and "dagster-daemon run" in dead.detail
    stopped = health.probe_schedules(
        [health.ScheduleState("ingest_schedule", True, "STOPPED"), health.ScheduleState("other", False, None)]
    )
    assert stopped.status == "warn" and "ingest_schedule" in stopped.detail
    running = health.probe_schedules([health.ScheduleState("ingest_schedule", True, "DECLARED_IN_CODE")])
    assert running.status == "ok"


class _Api(BaseHTTPRequestHandler):
    status_by_path = {
        "/markets/keyset": 200,
        "/prices-history": 400,
        "/trades": 503,
        "/2/tweets/search/recent": 401,
    }
    seen_auth: list[str] = []
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.path.split("?")[0])
        if self.headers.get("Authorization"):
            self.seen_auth.append(self.headers["Authorization"])
        status = self.status_by_path.get(self.path.split("?")[0], 404)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def live_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Live mode against an HTTP server on 127.0.0.1; X points at a closed port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("KAIZEN_SOURCE", "live")
    for key in ("GAMMA_URL", "CLOB_URL", "DATA_URL"):
        monkeypatch.setenv(f"KAIZEN_POLYMARKET__{key}", base)
    monkeypatch.setenv("KAIZEN_TWITTER__API_URL", base)
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", BEARER)
    monkeypatch.setenv("KAIZEN_OPS__API_PROBE_TIMEOUT_SECONDS", "3")
    yield base
    server.shutdown()


def test_api_probes_in_live_mode_treat_4xx_as_reachable_and_5xx_or_no_answer_as_findings(
    live_api: str,
) -> None:
    settings = load_settings()
    _Api.requests.clear()
    results = {r.probe: r for r in health.probe_sources(settings, timeout_seconds=3)}
    # one attempt each through the ingest transport: the 503 is measured, not retried
    assert sorted(_Api.requests) == sorted(_Api.status_by_path)
    assert results["api_gamma"].status == "ok" and "HTTP 200" in results["api_gamma"].detail
    assert results["api_clob"].status == "ok"
    assert results["api_x"].status == "ok"  # 401 without credentials: reachable, no quota used
    assert results["api_data"].status == "warn" and "HTTP 503" in results["api_data"].detail
    assert _Api.seen_auth == []

    closed = settings.model_copy(
        update={
            "polymarket": settings.polymarket.model_copy(
                update={"gamma_url": f"http://127.0.0.1:{free_port()}"}
            )
        }
    )
    gamma = next(r for r in health.probe_sources(closed, timeout_seconds=3) if r.probe == "api_gamma")
    assert gamma.status == "warn" and "unreachable" in gamma.detail


def _materialize_health(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    asset = next(a for a in OPS_ASSETS if a.key.path == ["health_report"])
    return dg.materialize(
        [asset], instance=instance, resources=build_resources(settings), raise_on_error=False
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_health_report_writes_probes_and_fails_only_the_checks_that_found_something(
    live_api: str, warehouse: Warehouse
) -> None:
    settings = load_settings()
    warehouse.upsert(
        "price_points",
        [
            {
                "token_id": "t1",
                "ts": utcnow() - timedelta(minutes=5),
                "market_id": "m1",
                "outcome": "Yes",
                "price": 0.4,
            }
        ],
    )
    with dg.instance_for_test() as instance:
        result = _materialize_health(settings, instance)
    assert result.success
    checks = _evaluations(result)
    assert checks["warehouse_integrity_ok"].passed
    assert checks["warehouse_size_ok"].passed
    assert checks["price_data_fresh"].passed
    assert checks["free_disk_ok"].passed
    assert not checks["apis_reachable"].passed
    assert checks["apis_reachable"].severity == dg.AssetCheckSeverity.WARN
    assert "HTTP 503" in (checks["apis_reachable"].description or "")
    assert not checks["daemon_heartbeat_ok"].passed  # no daemon runs in tests
    assert not checks["backups_recent"].passed
    table = warehouse.read_frame("SELECT probe, status FROM health_report")
    assert set(table["probe"]) >= {
        "warehouse_size",
        "price_freshness",
        "api_data",
        "free_disk",
        "dagster_daemon",
    }
    assert dict(zip(table["probe"], table["status"], strict=True))["api_data"] == "warn"
    for text in table.astype(str).to_numpy().ravel():
        assert BEARER not in text


def test_corrupt_warehouse_is_detected_and_the_alert_says_how_to_restore(
    live_api: str, warehouse: Warehouse, alert_settings: Settings, smtp_server: SmtpServer
) -> None:
    settings = load_settings()
    db = sqlite_path(warehouse.url)
    info = backup_sqlite(db, settings.database.backup_dir, keep=7)
    warehouse.dispose()
    with db.open("r+b") as fh:  # clobber the header: SQLite no longer recognises the file
        fh.write(b"\x00garbage-garbage-garbage" * 8)

    with dg.instance_for_test() as instance:
        result = _materialize_health(settings, instance)
        integrity = _evaluations(result)["warehouse_integrity_ok"]
        assert not integrity.passed
        assert integrity.severity == dg.AssetCheckSeverity.ERROR
        assert f"kaizen restore --backup {info.path} --yes" in (integrity.description or "")

        # the alert still goes out although alert state and outbox live in the broken warehouse
        sensor = build_alert_sensor(settings)
        resources = build_resources(settings)
        context = dg.build_sensor_context(instance=instance, resources=resources)
        sensor(context)
    subjects = [m.subject for m in smtp_server.messages]
    mail = next(m for m in smtp_server.messages if "warehouse_integrity_ok" in m.subject)
    assert mail.subject.startswith("[CRITICAL] health_report / warehouse_integrity_ok failed"), subjects
    text = mail.body("plain")
    assert f"kaizen restore --backup {info.path} --yes" in text
    assert "warehouse is unreadable" in text
    assert "lead@example.test" in mail.rcpt_tos


def test_demo_mode_health_after_ingest_sees_fresh_prices_and_reachable_simulator(
    monkeypatch: pytest.MonkeyPatch, warehouse: Warehouse
) -> None:
    """The lead's demo ingest fills price_points; health judges freshness against the demo clock."""
    from kaizen_pipeline.ingest.assets import INGEST_ASSETS

    for key, value in {
        "KAIZEN_DEMO__FROZEN_NOW": "2026-11-20T12:05:00Z",
        "KAIZEN_DATA_COLLECTION__MAX_MARKETS": "2",
        "KAIZEN_DATA_COLLECTION__HISTORY_DAYS": "1",
        "KAIZEN_DATA_COLLECTION__TRADE_HISTORY_DAYS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    prices = [a for a in INGEST_ASSETS if a.key.path[-1] in ("polymarket_markets", "market_prices")]
    health_asset = next(a for a in OPS_ASSETS if a.key.path == ["health_report"])
    dg.materialize(prices, resources=build_resources(settings))
    result = dg.materialize([health_asset], resources=build_resources(settings))
    checks = _evaluations(result)
    assert checks["price_data_fresh"].passed, checks["price_data_fresh"].description
    assert checks["apis_reachable"].passed, checks["apis_reachable"].description
    probes = warehouse.read_frame("SELECT probe, detail FROM health_report")
    clob = probes.loc[probes["probe"] == "api_clob", "detail"].iloc[0]
    assert "HTTP 200" in clob  # probed with a real token id from market_snapshots
