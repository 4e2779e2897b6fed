"""Portfolio sizing of the open signals: fractional Kelly, correlation shrink, caps, rebalancing trades.

Pure module (no Dagster). Weights are fractions of equity; each position holds the signalled
token (YES, or NO = the complement priced 1 - yes_price).

1. Price q: the current price of the bought token. Probability p that it pays out: the signal's
   calibrated ``win_prob`` (research.calibration: learned walk-forward from earlier signals'
   outcomes, shrunk toward the price when history is thin). A signal without one (no calibration
   yet) falls back to a placeholder, p = clip(q + edge_per_strength x strength, 0.01, 0.99)
   (``prob_source`` says which).
2. Kelly for a binary contract bought at q that pays 1: f* = (p - q') / (1 - q') (0 when p <= q'),
   with q' = q (1 + c) / (1 - c) the price after the costs of the entry and the exit fill
   (c = fees + slippage per fill), so a signal whose edge does not cover its costs gets no stake;
   ``kelly_fraction`` = ``research.kelly_fraction`` x f* (fractional Kelly).
3. Correlation shrink: with rho_ij the correlation of the markets' YES returns over the last
   ``research.correlation_window_buckets`` buckets and d = +1 (YES) / -1 (NO),
       shrink_i = 1 / (1 + sum_{j != i} max(0, rho_ij d_i d_j))
   so n perfectly correlated same-way bets share one bet's size; hedging pairs are not shrunk.
4. Caps, in order: each market <= ``signals.max_position_pct``; each category's sum <=
   ``research.max_category_pct`` (scaled down pro rata); the total <= ``signals.max_exposure_pct``
   (scaled down pro rata). Scaling only ever lowers weights, so all three caps hold at the end.
5. Rebalancing against the current positions (the previous allocation): per market, sell what
   is no longer wanted (all of it when the direction flips or the signal closed) and buy the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ALLOCATION_COLUMNS = [
    "market_id",
    "as_of_ts",
    "signal_ts",
    "direction",
    "token_id",
    "category",
    "price",
    "strength",
    "estimated_prob",
    "prob_source",
    "edge",
    "kelly_full",
    "kelly_fraction",
    "corr_shrink",
    "target_weight",
    "capped_by",
    "current_direction",
    "current_weight",
    "buy_weight",
    "sell_weight",
    "trade",
    "target_usd",
]

_EPS = 1e-12


@dataclass(frozen=True)
class SizingConfig:
    """Kelly fraction, edge model, caps (fractions of equity) and the bankroll."""

    kelly_fraction: float = 0.25
    edge_per_strength: float = 0.10
    max_position: float = 0.05
    max_category: float = 0.20
    max_total: float = 0.25
    bankroll_usd: float = 10_000.0
    cost_per_fill: float = 0.0


def cost_adjusted_price(price: np.ndarray | float, cost_per_fill: float) -> np.ndarray:
    """q' = q (1 + c) / (1 - c): the price a round trip effectively pays, capped below 1."""
    q = np.asarray(price, dtype=float)
    return np.minimum(q * (1.0 + cost_per_fill) / (1.0 - cost_per_fill), 0.999)


def estimated_probability(
    price: np.ndarray | float, strength: np.ndarray | float, edge_per_strength: float
) -> np.ndarray:
    """p = clip(q + edge_per_strength x strength, 0.01, 0.99)."""
    return np.clip(
        np.asarray(price, dtype=float) + edge_per_strength * np.asarray(strength, dtype=float), 0.01, 0.99
    )


def kelly_binary(prob: np.ndarray | float, price: np.ndarray | float) -> np.ndarray:
    """Full Kelly fraction f* = (p - q) / (1 - q) for a contract bought at q paying 1 (0 without edge)."""
    p = np.asarray(prob, dtype=float)
    q = np.asarray(price, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(q < 1.0, (p - q) / (1.0 - q), 0.0)
    return np.clip(np.nan_to_num(f, nan=0.0), 0.0, 1.0)


def correlation_shrink(corr: pd.DataFrame, directions: pd.Series) -> pd.Series:
    """shrink_i = 1 / (1 + sum_{j != i} max(0, rho_ij d_i d_j)), d = +1 for YES and -1 for NO."""
    markets = list(directions.index)
    sign = directions.map({"YES": 1.0, "NO": -1.0}).astype(float).to_numpy()
    rho = corr.reindex(index=markets, columns=markets).fillna(0.0).to_numpy(dtype=float)
    signed = rho * np.outer(sign, sign)
    np.fill_diagonal(signed, 0.0)
    return pd.Series(1.0 / (1.0 + np.clip(signed, 0.0, None).sum(axis=1)), index=markets, name="corr_shrink")


def apply_caps(
    weights: pd.Series,
    categories: pd.Series,
    max_position: float | pd.Series,
    max_category: float,
    max_total: float,
) -> tuple[pd.Series, pd.Series]:
    """Per-market (one cap, or a cap per market), per-category then total caps (pro-rata scaling).

    Returns (weights, capped_by labels).
    """
    w = weights.astype(float).clip(lower=0.0).copy()
    if isinstance(max_position, pd.Series):
        max_position = max_position.reindex(w.index).astype(float)
    capped: dict[object, list[str]] = {m: [] for m in w.index}
    over = w > max_position
    for m in w.index[over]:
        capped[m].append("position")
    w = w.clip(upper=max_position)
    cats = categories.reindex(w.index).fillna("(none)")
    for _cat, members in w.groupby(cats).groups.items():
        total = w.loc[members].sum()
        if total > max_category + _EPS:
            w.loc[members] *= max_category / total
            for m in members:
                if w.loc[m] > 0:
                    capped[m].append("category")
    total = w.sum()
    if total > max_total + _EPS:
        w *= max_total / total
        for m in w.index[w > 0]:
            capped[m].append("total")
    labels = pd.Series({m: ",".join(v) for m, v in capped.items()}, dtype=object).reindex(w.index)
    return w, labels


def return_correlations(returns: pd.DataFrame, markets: list[str], min_periods: int = 30) -> pd.DataFrame:
    """Pairwise correlation of YES returns (market_id, bucket_ts, ret) for ``markets``; NaN -> 0."""
    if returns.empty or not markets:
        return pd.DataFrame(0.0, index=markets, columns=markets)
    wide = returns[returns["market_id"].isin(markets)].pivot_table(
        index="bucket_ts", columns="market_id", values="ret", aggfunc="last"
    )
    corr = wide.corr(min_periods=min_periods).reindex(index=markets, columns=markets)
    return corr.fillna(0.0)


def _trade_text(
    cur_dir: str | None, cur_w: float, tgt_dir: str | None, tgt_w: float
) -> tuple[float, float, str]:
    if cur_dir is None or cur_w <= _EPS:
        cur_dir, cur_w = None, 0.0
    if tgt_dir is None or tgt_w <= _EPS:
        tgt_dir, tgt_w = None, 0.0
    if cur_dir is not None and tgt_dir is not None and cur_dir == tgt_dir:
        delta = tgt_w - cur_w
        if abs(delta) <= 1e-6:
            return 0.0, 0.0, "hold"
        if delta > 0:
            return delta, 0.0, f"buy {delta:.2%} {tgt_dir}"
        return 0.0, -delta, f"sell {-delta:.2%} {tgt_dir}"
    parts, buy, sell = [], 0.0, 0.0
    if cur_dir is not None:
        sell = cur_w
        parts.append(f"sell {cur_w:.2%} {cur_dir}")
    if tgt_dir is not None:
        buy = tgt_w
        parts.append(f"buy {tgt_w:.2%} {tgt_dir}")
    return buy, sell, "; ".join(parts) if parts else "hold"


def size_portfolio(
    open_signals: pd.DataFrame,
    current_prices: pd.Series,
    corr: pd.DataFrame,
    current_positions: pd.DataFrame | None,
    config: SizingConfig,
    as_of: pd.Timestamp,
    position_caps: pd.Series | None = None,
) -> pd.DataFrame:
    """Target weights for the open signals and the trades from ``current_positions`` (module docstring).

    open_signals: one row per market (market_id, bucket_ts, direction, token_id, strength, category);
    current_prices: YES price now, by market_id; current_positions: (market_id, direction, weight);
    position_caps: a per-market cap (fraction of equity) where it differs from config.max_position.
    """
    sig = open_signals.drop_duplicates("market_id", keep="last").set_index("market_id")
    rows = pd.DataFrame(index=sig.index)
    if not sig.empty:
        yes_now = current_prices.reindex(sig.index).astype(float)
        yes_now = yes_now.fillna(sig["yes_price"].astype(float)) if "yes_price" in sig else yes_now
        q = np.where(sig["direction"] == "YES", yes_now, 1.0 - yes_now)
        rows["signal_ts"] = sig["bucket_ts"]
        rows["direction"] = sig["direction"]
        rows["token_id"] = sig.get("token_id")
        rows["category"] = sig.get("category")
        rows["price"] = q
        rows["strength"] = sig["strength"].astype(float)
        placeholder = estimated_probability(q, rows["strength"], config.edge_per_strength)
        calibrated = (
            sig["win_prob"].astype(float) if "win_prob" in sig else pd.Series(np.nan, index=sig.index)
        )
        rows["estimated_prob"] = calibrated.where(calibrated.notna(), placeholder)
        rows["prob_source"] = np.where(calibrated.notna(), "calibrated", "placeholder")
        rows["edge"] = rows["estimated_prob"] - rows["price"]
        paid = cost_adjusted_price(rows["price"], config.cost_per_fill)
        rows["kelly_full"] = kelly_binary(rows["estimated_prob"], paid)
        rows["kelly_fraction"] = config.kelly_fraction * rows["kelly_full"]
        rows["corr_shrink"] = correlation_shrink(corr, rows["direction"])
        raw = (rows["kelly_fraction"] * rows["corr_shrink"]).fillna(0.0)
        caps: float | pd.Series = config.max_position
        if position_caps is not None:
            caps = position_caps.reindex(rows.index).fillna(config.max_position)
        weights, labels = apply_caps(raw, rows["category"], caps, config.max_category, config.max_total)
        rows["target_weight"] = weights
        rows["capped_by"] = labels
    rows = rows.reset_index()
    if sig.empty:
        rows = pd.DataFrame(
            {
                c: pd.Series(dtype=float if c in ("target_weight", "strength") else object)
                for c in ALLOCATION_COLUMNS
            }
        )

    cur = pd.DataFrame(columns=["market_id", "direction", "weight"])
    if current_positions is not None and not current_positions.empty:
        cur = current_positions[current_positions["weight"] > _EPS][["market_id", "direction", "weight"]]
    cur = cur.set_index("market_id")
    closed = [m for m in cur.index if m not in set(rows["market_id"])]
    if closed:
        rows = pd.concat(
            [
                rows,
                pd.DataFrame(
                    {
                        "market_id": closed,
                        "direction": None,
                        "target_weight": 0.0,
                        "capped_by": "",
                        "strength": 0.0,
                    }
                ),
            ],
            ignore_index=True,
        )
    rows["current_direction"] = rows["market_id"].map(cur["direction"]) if not cur.empty else None
    rows["current_weight"] = rows["market_id"].map(cur["weight"]).fillna(0.0) if not cur.empty else 0.0
    trades = [
        _trade_text(
            cd if isinstance(cd, str) else None, float(cw), d if isinstance(d, str) else None, float(tw)
        )
        for cd, cw, d, tw in zip(
            rows["current_direction"],
            rows["current_weight"],
            rows["direction"],
            rows["target_weight"],
            strict=True,
        )
    ]
    rows["buy_weight"] = [t[0] for t in trades]
    rows["sell_weight"] = [t[1] for t in trades]
    rows["trade"] = [t[2] for t in trades]
    rows["target_usd"] = rows["target_weight"].astype(float) * config.bankroll_usd
    rows["as_of_ts"] = pd.Timestamp(as_of)
    for col in ALLOCATION_COLUMNS:
        if col not in rows:
            rows[col] = None
    return rows[ALLOCATION_COLUMNS].sort_values("target_weight", ascending=False).reset_index(drop=True)
