"""Charts name markets the way a reader knows them: by question, never by a bare numeric id."""

import json

import pandas as pd

from kaizen_pipeline.reporting import plt
from kaizen_pipeline.research.charts import correlation_by_lag_figure, hype_vs_price_figure, market_label

NAMES = {
    "500037": "Will the Fed cut rates in December 2026?",
    "500074": "Will BTC close above $150k this year?",
}


def test_correlation_legend_and_hype_titles_show_questions() -> None:
    correlations = pd.DataFrame(
        {"market_id": list(NAMES), "pearson_by_lag": [json.dumps({"0": 0.1, "1": 0.3})] * 2}
    )
    fig = correlation_by_lag_figure(correlations, list(NAMES), NAMES)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert legend == [NAMES["500037"], NAMES["500074"]]
    ts = pd.date_range("2026-01-01", periods=4, freq="15min")
    hype = pd.DataFrame({"market_id": "500037", "bucket_ts": ts, "hype_index": [10.0, 20, 30, 40]})
    prices = pd.DataFrame({"market_id": "500037", "bucket_ts": ts, "yes_price": [0.4, 0.41, 0.42, 0.43]})
    fig = hype_vs_price_figure(hype, prices, ["500037"], NAMES)
    title = fig.axes[0].get_title()
    plt.close(fig)
    assert title == NAMES["500037"]


def test_a_long_question_is_cut_and_an_unknown_market_keeps_its_id() -> None:
    long = "Will " + "a very long question " * 10
    assert len(market_label("1", {"1": long})) == 48 and market_label("1", {"1": long}).endswith("\u2026")
    assert market_label("9", NAMES) == "market 9"
