"""The X bearer token never leaves the process: an X API that echoes it on 401 leaks it nowhere.

End to end: `dagster asset materialize` in a subprocess with its own DAGSTER_HOME (event log, compute
logs), the JSON log handler and a live-mode warehouse, against a Polymarket simulator and an X server
on 127.0.0.1 that answers 401 echoing the token; then every file and the captured output are grepped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kaizen_pipeline.ingest.simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
TOKEN = "kzTESTbearer9f3c1a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6%2Bq%3DZ"
FRAGMENTS = (TOKEN, TOKEN[:14], "9f3c1a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6")


def _echo_handler(style: str) -> type[BaseHTTPRequestHandler]:
    class Echo401(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
            auth = self.headers.get("Authorization", "")
            if style == "json":
                body = json.dumps(
                    {
                        "title": "Unauthorized",
                        "detail": f"the credential {auth} is not valid",
                        "access_token": auth.removeprefix("Bearer "),
                    }
                ).encode()
                ctype = "application/json"
            else:
                body = f"Unauthorized: token {auth.removeprefix('Bearer ')} rejected".encode()
                ctype = "text/plain"
            self.send_response(401)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep the test's own output quiet
            pass

    return Echo401


@pytest.fixture(params=["json", "plain"])
def echo_server(request: pytest.FixtureRequest) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _echo_handler(request.param))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _leaks(paths: list[Path], output: str) -> list[str]:
    found = []
    for path in paths:
        data = path.read_bytes()
        found += [f"{path}: {frag[:10]}..." for frag in FRAGMENTS if frag.encode() in data]
    found += [f"captured output: {frag[:10]}..." for frag in FRAGMENTS if frag in output]
    return found


@pytest.mark.slow
def test_x_401_echoing_the_token_leaks_it_nowhere(
    live_server: SimulatorServer, echo_server: str, tmp_path: Path
) -> None:
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    (home / "dagster.yaml").write_text(
        f"""
storage:
  sqlite:
    base_dir: {home}/storage
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}/storage
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
telemetry:
  enabled: false
python_logs:
  python_log_level: DEBUG
  managed_python_loggers:
    - kaizen_pipeline
  dagster_handler_config:
    handlers:
      kaizen_json_file:
        class: kaizen_pipeline.ops.logs.KaizenLogHandler
"""
    )
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAIZEN_", "DAGSTER_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DAGSTER_HOME=str(home),
        KAIZEN_CONFIG=str(config),
        KAIZEN_SOURCE="live",
        KAIZEN_POLYMARKET__GAMMA_URL=live_server.url,
        KAIZEN_POLYMARKET__CLOB_URL=live_server.url,
        KAIZEN_POLYMARKET__DATA_URL=live_server.url,
        KAIZEN_TWITTER__API_URL=echo_server,
        KAIZEN_TWITTER__BEARER_TOKEN=TOKEN,
        KAIZEN_TWITTER__PER_MARKET_QUERIES="false",
        KAIZEN_TRANSPORT__BACKOFF_BASE_SECONDS="0.01",
        KAIZEN_TRANSPORT__MAX_RETRIES="1",
        KAIZEN_DATA_COLLECTION__MAX_MARKETS="3",
        KAIZEN_DATABASE__PATH=str(data / "warehouse.sqlite"),
        KAIZEN_DATABASE__BACKUP_DIR=str(data / "backups"),
        KAIZEN_LOGGING__LOG_DIR=str(data / "logs"),
        KAIZEN_LOGGING__LEVEL="DEBUG",
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "kaizen_pipeline.definitions",
            "--select",
            "polymarket_markets,tweets",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert "RUN_SUCCESS" in output or "RUN_FAILURE" in output, output[-3000:]
    files = [p for root in (home, data) for p in root.rglob("*") if p.is_file()]
    assert any("compute_logs" in str(p) for p in files), "the run wrote no compute logs to grep"
    assert any(p.suffix == ".jsonl" for p in files), "the JSON log handler wrote nothing to grep"
    assert _leaks(files, output) == []
    # the degradation itself is still reported, with the credential masked
    assert "degraded" in output and "401" in output


def test_an_ingest_exception_echoing_the_token_is_stored_and_printed_redacted(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import dagster as dg

    from kaizen_pipeline.ingest import assets as ingest_assets
    from kaizen_pipeline.resources import build_resources
    from kaizen_pipeline.settings import load_settings

    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", TOKEN)

    async def echoing_collector(*_args: object) -> object:
        raise ValueError(f'X said: {{"detail": "Bearer {TOKEN}"}} and plain {TOKEN}')

    monkeypatch.setattr(ingest_assets, "collect_markets", echoing_collector)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [ingest_assets.polymarket_markets],
        resources=build_resources(load_settings()),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    stored = [failure.to_string()] + [
        str(r.user_message) + str(r.dagster_event) for r in instance.all_logs(result.run_id)
    ]
    text = "\n".join(stored) + capfd.readouterr().err
    assert "ValueError" in text and "***" in text
    assert [frag[:10] for frag in FRAGMENTS if frag in text] == []
