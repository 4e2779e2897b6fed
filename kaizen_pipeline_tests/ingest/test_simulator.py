"""The demo world: deterministic, real wire formats, planted effects, the X search contract."""

import json
from datetime import UTC, datetime

import httpx

from kaizen_pipeline.ingest.schedules import frequency_cron
from kaizen_pipeline.ingest.simulator.world import DemoWorld

NOW = datetime(2026, 11, 20, 12, 5, tzinfo=UTC).timestamp()


def world(seed: int = 5) -> DemoWorld:
    return DemoWorld(seed=seed, n_markets=10, history_days=2, clock=lambda: NOW)


def get(w: DemoWorld, url: str, **headers: str) -> httpx.Response:
    return w.handle(httpx.Request("GET", f"http://sim{url}", headers=headers))


def test_same_seed_same_answers_and_another_seed_differs() -> None:
    a, b, c = world(), world(), world(6)
    token = a.markets[0].yes_token
    url = f"/prices-history?market={token}&startTs={int(NOW) - 86400}&endTs={int(NOW)}&fidelity=15"
    assert get(a, url).content == get(b, url).content
    assert (
        get(a, "/markets/keyset?limit=100&closed=false").content
        == get(b, "/markets/keyset?limit=100&closed=false").content
    )
    assert get(a, "/markets/keyset?limit=100").json() != get(c, "/markets/keyset?limit=100").json()


def test_history_is_stable_as_time_moves_on() -> None:
    early = DemoWorld(seed=5, n_markets=10, clock=lambda: NOW)
    later = DemoWorld(seed=5, n_markets=10, clock=lambda: NOW + 14 * 86400)
    token = early.markets[3].yes_token
    url = f"/prices-history?market={token}&startTs={int(NOW) - 3 * 86400}&endTs={int(NOW)}&fidelity=15"
    assert get(early, url).json() == get(later, url).json()


def test_gamma_records_use_the_real_string_encoded_fields() -> None:
    body = get(world(), "/markets/keyset?limit=5&closed=false&order=volume24hr&ascending=false").json()
    market = body["markets"][0]
    assert isinstance(market["outcomes"], str) and json.loads(market["outcomes"])
    assert isinstance(market["clobTokenIds"], str) and isinstance(market["volume"], str)
    assert "next_cursor" in body
    volumes = [m["volume24hr"] for m in body["markets"]]
    assert volumes == sorted(volumes, reverse=True)
    assert get(world(), "/markets/keyset?limit=500").status_code == 422  # pages are capped at 100


def test_planted_lead_lags_cover_a_share_of_markets() -> None:
    lags = DemoWorld(seed=7, n_markets=50).planted_lead_lags()
    planted = [lag for lag in lags.values() if lag]
    assert len(lags) == 50 and 12 <= len(planted) <= 30
    assert set(planted) <= {2, 4, 6, 8}


def test_x_search_needs_a_bearer_token_and_pages_newest_first() -> None:
    w = world()
    q = "(polymarket.com OR %23Polymarket) -is:retweet"
    assert get(w, f"/2/tweets/search/recent?query={q}&max_results=10").status_code == 401
    first = get(w, f"/2/tweets/search/recent?query={q}&max_results=10", authorization="Bearer x")
    body = first.json()
    ids = [int(t["id"]) for t in body["data"]]
    assert ids == sorted(ids, reverse=True) and body["meta"]["result_count"] == 10
    assert first.headers["x-rate-limit-limit"] == "450" and body["includes"]["users"]
    second = get(
        w,
        f"/2/tweets/search/recent?query={q}&max_results=10&next_token={body['meta']['next_token']}",
        authorization="Bearer x",
    ).json()
    assert int(second["data"][0]["id"]) < ids[-1]


def test_collection_frequency_becomes_a_cron_expression() -> None:
    assert frequency_cron(15) == "*/15 * * * *"
    assert frequency_cron(120) == "0 */2 * * *"
    assert frequency_cron(1440) == "0 0 * * *"
    try:
        frequency_cron(7 * 60)
    except ValueError as exc:
        assert "data_collection.frequency_minutes=420" in str(exc)
    else:
        raise AssertionError("a period with no cron form must be rejected")
