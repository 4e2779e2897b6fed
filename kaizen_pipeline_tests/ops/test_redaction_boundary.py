"""The redaction boundary: credential shapes, the warehouse's writes and every kaizen_pipeline log record."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path

import pytest

from kaizen_pipeline.ops.logs import JsonFormatter, install_log_redaction
from kaizen_pipeline.ops.redact import redact
from kaizen_pipeline.warehouse import Warehouse

TOKEN = "kzUNITbearer0d9c8b7a6f5e4d3c2b1a%2Fx%3D"


@pytest.mark.parametrize(
    "text",
    [
        '{"title":"Unauthorized","detail":"Bearer kzOTHERcredential123 is not valid"}',
        '{"access_token": "kzOTHERcredential123", "token_type": "bearer"}',
        "Authorization: Bearer kzOTHERcredential123",
        '{"headers": {"Authorization": "Basic kzOTHERcredential123"}}',
        "x-api-key=kzOTHERcredential123",
        'client_secret: "kzOTHERcredential123"',
    ],
)
def test_credential_shapes_are_masked_without_knowing_the_value(text: str) -> None:
    assert "kzOTHERcredential123" not in redact(text)


def test_known_secret_is_masked_in_every_spelling_and_when_cut_off() -> None:
    from urllib.parse import unquote

    for text in (
        f"plain {TOKEN} echoed",
        json.dumps({"echo": unquote(TOKEN)}).replace("/", "\\/"),
        f"decoded {unquote(TOKEN)} form",
        f"reason truncated at 500 chars: ...{TOKEN[:20]}",
    ):
        masked = redact(text, [TOKEN, unquote(TOKEN)])
        assert TOKEN[:12] not in masked and "***" in masked


def test_market_identifiers_and_prose_are_not_mistaken_for_credentials() -> None:
    text = 'token_id=123 clob_token_ids: ["1", "2"] max_tokens: 5 the bearer of bad news'
    assert redact(text) == text


def test_the_warehouse_stores_no_secret(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", TOKEN)
    warehouse.upsert(
        "rejected_records",
        [
            {
                "reject_id": "r1",
                "rejected_at": datetime(2026, 1, 1),
                "source": "x:/2/tweets/search/recent",
                "record_key": "q1",
                "reason": f"HTTP 401: token {TOKEN} rejected",
                "payload": json.dumps({"detail": f"Bearer {TOKEN}", "nested": [f"again {TOKEN}"]}),
            }
        ],
    )
    dumped = warehouse.read_frame("SELECT * FROM rejected_records").to_string()
    assert warehouse.count("rejected_records") == 1
    assert TOKEN[:12] not in dumped and "***" in dumped
    warehouse.dispose()
    assert TOKEN[:12].encode() not in Path(warehouse.url.removeprefix("sqlite:///")).read_bytes()


def test_every_kaizen_pipeline_log_record_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZEN_TWITTER__BEARER_TOKEN", TOKEN)
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kaizen_pipeline.ingest.some_child")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("X answered %s", f"401 {{'detail': 'Bearer {TOKEN}'}}")
        logger.info("plain echo: %s", TOKEN)
        try:
            raise RuntimeError(f"HTTP 401: {TOKEN}")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN[:12] not in output
    assert output.count("***") >= 3 and "RuntimeError" in output
