"""Metric forecasting: ARIMA by AIC on a deseasonalised series, intervals, early warnings, anomalies.

Pure module (no Dagster). The forecaster is deliberately small and fast:

1. Seasonality: a classical additive decomposition (centred moving average, then the mean
   deviation per position in the season) gives a seasonal profile. It is kept only when it
   earns its m - 1 parameters: a likelihood-ratio test (1%) of the best model on the
   deseasonalised series against the same model on the raw series.
2. Level, trend or unit root: KPSS and ADF tests (see ``stationarity``) pick d = 0 around a
   mean, d = 0 around a fitted line, or d = 1 with a drift (the mean step) when it is significant.
3. Order: ARMA(p, q) with p <= max_p, q <= max_q chosen by AIC, each candidate estimated by
   statsmodels' Hannan-Rissanen regression (no numerical optimisation: ~10 ms a candidate)
   and scored by one Kalman-filter pass of statsmodels' state-space ARIMA.
4. Forecast mean and prediction intervals come from that state-space model; the seasonal
   profile and drift are added back.

Against statsforecast's AutoARIMA with a seasonal period this is faster (no seasonal ARMA
terms to optimise) and, on series whose season is a stable pattern, at least as accurate
(bench/forecast.py measures both).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

_MIN_POINTS_FOR_MODEL = 8  # below this a mean forecast is all the data can support
SEASON_TEST_ALPHA = 0.01


@dataclass(frozen=True)
class ModelChoice:
    """The model the AIC grid picked, with the ranking that led to it."""

    order: tuple[int, int, int]
    seasonal: bool
    season_length: int
    drift: float
    aic: float
    ar_params: tuple[float, ...]
    ma_params: tuple[float, ...]
    candidates: tuple[tuple[tuple[int, int, int], float], ...] = ()

    @property
    def label(self) -> str:
        p, d, q = self.order
        season = f" + season({self.season_length})" if self.seasonal else ""
        drift = (" + drift" if d else " + trend") if self.drift else ""
        return f"ARIMA({p},{d},{q}){season}{drift}"


@dataclass(frozen=True)
class Forecast:
    """A forecast ``horizon`` steps past the end of the history, with its prediction interval."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    std_error: np.ndarray
    model: ModelChoice
    alpha: float
    fitted: np.ndarray = field(repr=False)  # one-step-ahead in-sample predictions
    residual_std: float = 0.0

    @property
    def horizon(self) -> int:
        return len(self.mean)


# --- the pieces ---------------------------------------------------------------------------


def seasonal_profile(y: np.ndarray, season_length: int) -> np.ndarray:
    """Additive seasonal profile (sums to zero) by classical decomposition; position 0 = y[0]."""
    y = np.asarray(y, dtype=float)
    m = season_length
    n = len(y)
    if m < 2 or n < 2 * m:
        return np.zeros(max(m, 1))
    # an odd period is centred by a plain m-term average, an even one by a 2 x m average
    kernel = np.ones(m) / m if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5] / m
    trend = np.convolve(y, kernel, mode="valid")
    half = (len(kernel) - 1) // 2
    detrended = np.full(n, np.nan)
    detrended[half : half + len(trend)] = y[half : half + len(trend)] - trend
    profile = np.array([np.nanmean(detrended[j::m]) for j in range(m)])
    return profile - profile.mean()


def stationarity(z: np.ndarray, alpha: float = 0.05) -> str:
    """'level' (stationary around a mean), 'unit_root' (difference it) or 'trend' (stationary around a line).

    KPSS (level) decides whether the series wanders at all. If it does, ADF with a trend term
    decides between a unit root and a deterministic trend: KPSS alone mistakes a persistent
    AR(1) (phi near 0.9) for a random walk on a year of data, and differencing such a series
    throws away its mean reversion. A trend is only kept when the line explains at least half
    the variance, so a persistent but level series is not extrapolated along a spurious slope.
    """
    from statsmodels.tsa.stattools import adfuller, kpss

    if len(z) < 12 or np.ptp(z) == 0:
        return "level"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InterpolationWarning: p-value outside the table
        _, kpss_p, *_ = kpss(z, regression="c", nlags="auto")
        if kpss_p >= alpha:
            return "level"
        adf_p = adfuller(z, regression="ct", autolag="AIC")[1]
    if adf_p >= alpha:
        return "unit_root"
    t = np.arange(len(z), dtype=float)
    r = np.corrcoef(t, z)[0, 1]
    return "trend" if r * r >= 0.5 else "level"


def _fit_arma(z: np.ndarray, p: int, d: int, q: int, *, full: bool):
    """Hannan-Rissanen estimate of ARIMA(p,d,q) without constant, filtered once; None if unusable."""
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = ARIMA(z, order=(p, d, q), trend="n")
            if full:
                return model.fit(method="hannan_rissanen")
            return model.fit(method="hannan_rissanen", low_memory=True, cov_type="none")
        except (ValueError, np.linalg.LinAlgError):  # non-stationary / non-invertible estimate
            return None


def _aic(result) -> float:
    aic = float(result.aic) if result is not None else np.inf
    return aic if np.isfinite(aic) else np.inf


# --- the forecaster -----------------------------------------------------------------------


@dataclass
class FittedModel:
    """A chosen model fitted to ``y``: decomposition (season, level, drift) plus the ARMA state space."""

    y: np.ndarray
    choice: ModelChoice
    profile: np.ndarray  # seasonal profile, position 0 = y[0]; zeros(1) when not seasonal
    level: float
    result: object | None  # statsmodels ARIMAResults; None for the mean model
    fit_args: dict = field(default_factory=dict)  # how it was chosen, to refit on a cleaned series

    @property
    def n(self) -> int:
        return len(self.y)

    def _deterministic(self, index: np.ndarray) -> np.ndarray:
        m = self.choice.season_length
        season = self.profile[index % m] if m > 1 else np.zeros(len(index))
        return season + self.level + self.choice.drift * index

    def deseasonalised(self) -> np.ndarray:
        """y without the seasonal profile (level and drift kept)."""
        index = np.arange(self.n)
        m = self.choice.season_length
        return self.y - (self.profile[index % m] if m > 1 else 0.0)

    def forecast(self, horizon: int, alpha: float = 0.05) -> Forecast:
        if horizon < 1:
            raise ValueError(f"horizon: must be >= 1, got {horizon}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
        index = np.arange(self.n, self.n + horizon)
        shift = self._deterministic(index)
        if self.result is None:
            sd = float(np.std(self.y, ddof=1)) if self.n > 1 else 0.0
            se = np.full(horizon, sd * np.sqrt(1 + 1 / self.n) if self.n > 1 else 0.0)
            mean = shift
        else:
            frame = self.result.get_forecast(horizon).summary_frame(alpha=alpha)
            mean = frame["mean"].to_numpy() + shift
            se = frame["mean_se"].to_numpy()
        z = stats.norm.ppf(1 - alpha / 2)
        return Forecast(
            mean=mean,
            lower=mean - z * se,
            upper=mean + z * se,
            std_error=se,
            model=self.choice,
            alpha=alpha,
            fitted=self.one_step(),
            residual_std=self.residual_std(),
        )

    def one_step(self, y: np.ndarray | None = None) -> np.ndarray:
        """One-step-ahead predictions of ``y`` (default: the fitted series; NaN entries are skipped)."""
        data = self.y if y is None else np.asarray(y, dtype=float)
        index = np.arange(len(data))
        shift = self._deterministic(index)
        if self.result is None:
            return shift
        result = self.result if y is None else self.result.apply(data - shift)
        return np.asarray(result.fittedvalues, dtype=float) + shift

    def residual_std(self, robust: bool = True) -> float:
        """Scale of the one-step residuals after the start-up points: 1.4826 x MAD, or the standard deviation."""
        resid = (self.y - self.one_step())[self.burn_in :]
        if robust:
            return robust_scale(resid)
        return float(np.std(resid, ddof=1)) if len(resid) > 1 else 0.0

    @property
    def burn_in(self) -> int:
        """Leading points whose one-step prediction still rests on the filter's initialisation."""
        p, d, q = self.choice.order
        return min(self.n - 1, max(1, p + d + q))


def robust_scale(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation (the normal sigma), falling back to 1.2533 x mean |dev| when MAD is 0."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return 0.0
    mad = float(stats.median_abs_deviation(x, scale="normal"))
    if mad > 0:
        return mad
    return float(1.2533 * np.mean(np.abs(x - np.median(x))))


def fit_model(
    y: np.ndarray | pd.Series,
    *,
    season_length: int = 7,
    max_p: int = 2,
    max_q: int = 1,
    max_d: int = 1,
) -> FittedModel:
    """Pick the model by AIC (see the module docstring) and fit it to ``y``.

    ``y`` is equally spaced (daily for kaizen metrics) without gaps (NaN is rejected).
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-d series, got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("y: empty series")
    if np.isnan(y).any():
        raise ValueError("y: contains NaN; fill or drop missing days before forecasting")
    n = len(y)
    if n < _MIN_POINTS_FOR_MODEL:
        return _mean_model(y)

    m = season_length if season_length >= 2 and n >= 3 * season_length else 1
    profile = seasonal_profile(y, m) if m > 1 else np.zeros(1)
    season_in = profile[np.arange(n) % m] if m > 1 else np.zeros(n)
    t = np.arange(n)

    def choose(series: np.ndarray) -> tuple[tuple[int, int, int], float, float, float, list]:
        kind = stationarity(series) if max_d >= 1 else "level"
        d = 1 if kind == "unit_root" else 0
        level, drift = (0.0, 0.0) if d else (float(series.mean()), 0.0)
        if kind == "unit_root":
            steps = np.diff(series)
            se = steps.std(ddof=1) / np.sqrt(len(steps)) if len(steps) > 1 else np.inf
            if se > 0 and abs(steps.mean()) > 2 * se:
                drift = float(steps.mean())
        elif kind == "trend":
            drift, level = (float(v) for v in np.polyfit(t, series, 1))
        z = series - level - drift * t
        ranking = [
            ((p, d, q), _aic(_fit_arma(z, p, d, q, full=False)))
            for p in range(max_p + 1)
            for q in range(max_q + 1)
        ]
        ranking.sort(key=lambda item: item[1])
        return ranking[0][0], ranking[0][1], level, drift, ranking

    order, aic, level, drift, ranking = choose(y - season_in)
    seasonal = m > 1
    if seasonal:
        # The season must earn its m - 1 free parameters: a likelihood-ratio test against the same
        # order on the raw series at 1% (AIC's 2 per parameter keeps a spurious season ~6% of the time).
        raw_level = level + float(np.mean(season_in)) if not order[1] else 0.0
        raw_aic = _aic(_fit_arma(y - raw_level - drift * t, *order, full=False))
        seasonal = raw_aic - aic > stats.chi2.ppf(1 - SEASON_TEST_ALPHA, m - 1)
        if not seasonal:
            profile, season_in, m = np.zeros(1), np.zeros(n), 1
            order, aic, level, drift, ranking = choose(y)

    result = _fit_arma(y - season_in - level - drift * t, *order, full=True)
    if result is None or not np.isfinite(result.aic):
        return _mean_model(y)
    names = list(result.model.param_names)
    params = dict(zip(names, np.asarray(result.params, dtype=float), strict=True))
    choice = ModelChoice(
        order=order,
        seasonal=seasonal,
        season_length=m,
        drift=drift,
        aic=float(result.aic),
        ar_params=tuple(v for k, v in params.items() if k.startswith("ar.L")),
        ma_params=tuple(v for k, v in params.items() if k.startswith("ma.L")),
        candidates=tuple(ranking),
    )
    fit_args = {"season_length": season_length, "max_p": max_p, "max_q": max_q, "max_d": max_d}
    return FittedModel(y=y, choice=choice, profile=profile, level=level, result=result, fit_args=fit_args)


def _mean_model(y: np.ndarray) -> FittedModel:
    """Too little history for a model: the mean, with an interval from the sample spread."""
    choice = ModelChoice(
        order=(0, 0, 0),
        seasonal=False,
        season_length=1,
        drift=0.0,
        aic=float("nan"),
        ar_params=(),
        ma_params=(),
    )
    return FittedModel(y=y, choice=choice, profile=np.zeros(1), level=float(np.mean(y)), result=None)


def fit_forecast(
    y: np.ndarray | pd.Series,
    horizon: int = 14,
    *,
    season_length: int = 7,
    alpha: float = 0.05,
    max_p: int = 2,
    max_q: int = 1,
    max_d: int = 1,
) -> Forecast:
    """Forecast ``horizon`` steps past the end of ``y`` with a (1 - alpha) prediction interval."""
    model = fit_model(y, season_length=season_length, max_p=max_p, max_q=max_q, max_d=max_d)
    return model.forecast(horizon, alpha)


# --- early warning and what-if ------------------------------------------------------------


@dataclass(frozen=True)
class EarlyWarning:
    """Whether the forecast crosses the deviation line inside the horizon, and when."""

    crosses: bool
    first_step: int | None  # 1-based step of the first crossing of the forecast mean
    max_probability: float  # largest P(value beyond the line) over the horizon, normal approximation
    first_interval_step: int | None  # first step whose interval reaches beyond the line


def early_warning(forecast: Forecast, line: float, direction: str) -> EarlyWarning:
    """Compare the forecast with a metric's deviation line (``direction``: 'higher' or 'lower' is better)."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction: must be 'higher' or 'lower', got {direction!r}")
    mean, se = forecast.mean, np.maximum(forecast.std_error, 1e-12)
    if direction == "higher":
        beyond = mean < line
        prob = stats.norm.cdf((line - mean) / se)
        reach = forecast.lower < line
    else:
        beyond = mean > line
        prob = stats.norm.sf((line - mean) / se)
        reach = forecast.upper > line
    first = int(np.argmax(beyond)) + 1 if beyond.any() else None
    first_reach = int(np.argmax(reach)) + 1 if reach.any() else None
    return EarlyWarning(
        crosses=bool(beyond.any()),
        first_step=first,
        max_probability=float(prob.max()) if len(prob) else 0.0,
        first_interval_step=first_reach,
    )


def apply_effect(forecast: Forecast, effect: float, start_step: int = 1) -> Forecast:
    """What-if: the forecast with a step change of ``effect`` from ``start_step`` (1-based) on."""
    if start_step < 1:
        raise ValueError(f"start_step: must be >= 1, got {start_step}")
    shift = np.where(np.arange(1, forecast.horizon + 1) >= start_step, effect, 0.0)
    return Forecast(
        mean=forecast.mean + shift,
        lower=forecast.lower + shift,
        upper=forecast.upper + shift,
        std_error=forecast.std_error,
        model=forecast.model,
        alpha=forecast.alpha,
        fitted=forecast.fitted,
        residual_std=forecast.residual_std,
    )


# --- anomalies ----------------------------------------------------------------------------


def rolling_robust_z(
    values: np.ndarray, window: int, min_periods: int = 10, scale_floor: float = 0.0
) -> np.ndarray:
    """z of each point against the median and MAD-scale of the ``window`` points before it (NaN: too few).

    The scale is 1.4826 x MAD (1.2533 x mean absolute deviation when MAD is 0), never below
    ``scale_floor``; with a zero scale a point equal to the median scores 0, any other infinity.
    """
    x = np.asarray(values, dtype=float)
    z = np.full(len(x), np.nan)
    for idx in range(len(x)):
        past = x[max(0, idx - window) : idx]
        past = past[~np.isnan(past)]
        if len(past) < min_periods or np.isnan(x[idx]):
            continue
        center = np.median(past)
        scale = max(robust_scale(past), scale_floor)
        if scale > 0:
            z[idx] = (x[idx] - center) / scale
        else:
            z[idx] = 0.0 if x[idx] == center else np.inf
    return z


def _flag_outliers(
    model: FittedModel, y: np.ndarray, sigma: float, threshold: float, limit: int
) -> tuple[dict[int, float], np.ndarray]:
    """Iteratively mask the worst one-step residual beyond ``threshold`` sigmas; return {index: z} and expectations."""
    masked = y.copy()
    flagged: dict[int, float] = {}
    expected = model.one_step(y)
    if sigma <= 0:
        return flagged, expected
    for _ in range(limit):
        resid_z = (y - expected) / sigma
        resid_z[: model.burn_in] = 0.0
        resid_z[list(flagged)] = 0.0
        worst = int(np.argmax(np.abs(resid_z)))
        if abs(resid_z[worst]) <= threshold:
            break
        flagged[worst] = float(resid_z[worst])
        masked[worst] = np.nan
        refiltered = model.one_step(masked)
        for idx in flagged:  # a flagged point keeps the expectation it was judged against
            refiltered[idx] = expected[idx]
        expected = refiltered
    return flagged, expected


def detect_anomalies(
    model: FittedModel, threshold: float = 4.0, window: int = 28, max_anomalies: int | None = None
) -> pd.DataFrame:
    """Points that leave their one-step prediction interval or whose robust rolling z passes ``threshold``.

    The interval test is iterative: the worst point beyond ``threshold`` sigmas is masked and
    the series re-filtered before the next is judged, so one spike does not also flag the point
    after it (whose prediction the spike pulled). Sigma is first the robust (MAD) residual scale;
    when anything was flagged, the model is refit on the series with the flagged points replaced
    by their expectations (a spike biases the estimated coefficients) and the test repeated with
    the refit model's residual standard deviation. The robust z compares each residual with the
    median and MAD of the ``window`` residuals before it: it catches a shifted level the
    one-step predictions have started to follow, and calms down in a noisy stretch.
    Columns: index, value, expected, residual_z, robust_z, reason.
    """
    if threshold <= 0:
        raise ValueError(f"threshold: must be > 0, got {threshold}")
    y = model.y
    n = len(y)
    limit = max_anomalies if max_anomalies is not None else max(1, n // 10)
    sigma = model.residual_std()
    flagged, expected = _flag_outliers(model, y, sigma, threshold, limit)
    if flagged and model.result is not None:
        cleaned = y.copy()
        cleaned[list(flagged)] = expected[list(flagged)]
        model = fit_model(cleaned, **model.fit_args)
        # With the outliers gone the plain standard deviation is the efficient scale (MAD wastes a
        # third of the information, and a noisier sigma flags borderline points by chance).
        sigma = model.residual_std(robust=False)
        flagged, expected = _flag_outliers(model, y, sigma, threshold, limit)
    # The robust z runs on the one-step residuals (flagged points masked), which are close to
    # independent: on the raw values of a persistent metric a trailing median lags and misfires.
    # Its local scale is floored at the whole series' residual scale, because a MAD from a few
    # weeks of points is itself noisy and a calm stretch would make ordinary noise look extreme.
    residuals = y - expected
    residuals[: model.burn_in] = np.nan
    robust = rolling_robust_z(residuals, window, min_periods=min(10, window), scale_floor=sigma)
    rows = []
    for idx in range(n):
        rz = robust[idx]
        by_interval = idx in flagged
        by_robust = bool(np.isfinite(rz) and abs(rz) > threshold) or bool(np.isinf(rz))
        if not (by_interval or by_robust):
            continue
        reason = " and ".join(
            r for r, hit in (("outside interval", by_interval), ("robust z", by_robust)) if hit
        )
        rows.append(
            {
                "index": idx,
                "value": float(y[idx]),
                "expected": float(expected[idx]),
                "residual_z": flagged.get(idx, float((y[idx] - expected[idx]) / sigma) if sigma > 0 else 0.0),
                "robust_z": float(rz) if np.isfinite(rz) else None,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=["index", "value", "expected", "residual_z", "robust_z", "reason"])


# --- accuracy -----------------------------------------------------------------------------


def mase_scale(insample: np.ndarray, m: int = 1) -> float:
    """In-sample mean absolute error of the (seasonal, period ``m``) naive one-step forecast."""
    x = np.asarray(insample, dtype=float)
    if len(x) <= m:
        return float("nan")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, m: int = 1) -> float:
    """Mean absolute scaled error: out-of-sample MAE over the in-sample naive MAE (NaN: zero scale)."""
    scale = mase_scale(insample, m)
    if not np.isfinite(scale) or scale == 0:
        return float("nan")
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    return float(np.mean(np.abs(a - f)) / scale)


@dataclass(frozen=True)
class RollingAccuracy:
    """Rolling-origin accuracy: the model's MASE and the naive (last value) forecast's on the same origins."""

    mase: float
    naive_mase: float
    origins: int
    horizon: int

    @property
    def skill(self) -> float:
        """1 - MASE / naive MASE: the share of the naive forecast's error the model removes."""
        if not np.isfinite(self.naive_mase) or self.naive_mase == 0:
            return float("nan")
        return 1 - self.mase / self.naive_mase


def rolling_origin_accuracy(
    y: np.ndarray | pd.Series,
    horizon: int,
    origins: int,
    *,
    min_train: int = 10,
    season_length: int = 7,
    max_p: int = 2,
    max_q: int = 1,
) -> RollingAccuracy | None:
    """Refit at the last ``origins`` origins (``horizon`` apart), forecast, score by MASE (naive scale).

    The horizon shrinks to a third of the history on short series; None when not even one
    origin leaves ``min_train`` training points.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    h = min(horizon, max(1, n // 3))
    scores, naive_scores = [], []
    for k in range(origins):
        origin = n - h - k * h
        if origin < min_train:
            break
        train, test = y[:origin], y[origin : origin + h]
        fc = fit_forecast(train, h, season_length=season_length, max_p=max_p, max_q=max_q)
        score = mase(test, fc.mean, train)
        naive = mase(test, np.full(h, train[-1]), train)
        if np.isfinite(score) and np.isfinite(naive):
            scores.append(score)
            naive_scores.append(naive)
    if not scores:
        return None
    return RollingAccuracy(
        mase=float(np.mean(scores)), naive_mase=float(np.mean(naive_scores)), origins=len(scores), horizon=h
    )
