"""Benchmark: kaizen's metric forecaster against statsforecast's AutoARIMA(season_length=7).

Data (seeded, identical for both): N daily series of L points plus a 14-day holdout, each
``level + weekly season + AR(1)`` with phi ~ U(0.3, 0.9), a random weekly pattern of
amplitude ~ U(0.5, 3) x the innovation sigma, and unit Gaussian innovations.

Each forecaster runs cold in a fresh Python process (interpreter start, imports, numba
compilation for statsforecast and the fits all count) with the same number of worker
processes (``--jobs``; statsforecast's n_jobs, a multiprocessing pool for ours). Wall time is
measured around the process, CPU time from the children's rusage (the machine may be shared,
so CPU seconds are the steadier figure).

Accuracy: MASE over the 14-day holdout, scaled by the in-sample seasonal-naive (period 7) MAE
(primary) and by the naive (period 1) MAE, averaged over series; the same for both.

    python bench/forecast.py                 # 100 series x 365 points, both forecasters
    python bench/forecast.py --series 20     # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kaizen_pipeline.ops.progress import terminal_progress

HORIZON = 14
SEASON = 7


def make_data(series: int, length: int, seed: int) -> np.ndarray:
    """(series, length + HORIZON) array: level + weekly season + AR(1), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    total = length + HORIZON
    burn = 100
    out = np.empty((series, total))
    for i in range(series):
        phi = rng.uniform(0.3, 0.9)
        amplitude = rng.uniform(0.5, 3.0)
        pattern = rng.normal(size=SEASON)
        pattern = (pattern - pattern.mean()) / pattern.std() * amplitude
        shocks = rng.normal(size=total + burn)
        ar = np.zeros(total + burn)
        for t in range(1, total + burn):
            ar[t] = phi * ar[t - 1] + shocks[t]
        level = rng.uniform(10, 100)
        out[i] = level + pattern[np.arange(total) % SEASON] + ar[burn:]
    return out


def mase(train: np.ndarray, test: np.ndarray, forecast: np.ndarray, m: int) -> float:
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    return float(np.mean(np.abs(test - forecast)) / scale)


# --- workers (run in a fresh process) -------------------------------------------------------


def _ours_chunk(chunk: np.ndarray) -> np.ndarray:
    from kaizen_pipeline.kaizen.forecasting import fit_forecast

    return np.array([fit_forecast(y, HORIZON, season_length=SEASON).mean for y in chunk])


def worker_ours(train: np.ndarray, jobs: int) -> np.ndarray:
    if jobs <= 1:
        return _ours_chunk(train)
    import multiprocessing as mp

    chunks = [c for c in np.array_split(train, jobs * 4) if len(c)]
    with mp.get_context("spawn").Pool(jobs) as pool:
        return np.vstack(pool.map(_ours_chunk, chunks))


def worker_statsforecast(train: np.ndarray, jobs: int) -> np.ndarray:
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA

    n_series, length = train.shape
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(n_series), length),
            "ds": np.tile(pd.date_range("2025-01-01", periods=length, freq="D").to_numpy(), n_series),
            "y": train.ravel(),
        }
    )
    model = StatsForecast(models=[AutoARIMA(season_length=SEASON)], freq="D", n_jobs=jobs)
    out = model.forecast(df=frame, h=HORIZON).sort_values(["unique_id", "ds"])
    return out["AutoARIMA"].to_numpy().reshape(n_series, HORIZON)


def run_worker(name: str, data_path: str, out_path: str, jobs: int) -> None:
    train = np.load(data_path)["train"]
    started = time.perf_counter()
    forecasts = worker_ours(train, jobs) if name == "ours" else worker_statsforecast(train, jobs)
    np.savez(out_path, forecasts=forecasts, fit_seconds=time.perf_counter() - started)


# --- driver ---------------------------------------------------------------------------------


def run_cold(name: str, data_path: Path, jobs: int, workdir: Path) -> dict[str, float]:
    out_path = workdir / f"{name}.npz"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--data",
            str(data_path),
            "--out",
            str(out_path),
            "--jobs",
            str(jobs),
        ],
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = np.load(out_path)
    return {"wall": wall, "cpu": cpu, "fit": float(result["fit_seconds"]), "forecasts": result["forecasts"]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--length", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--jobs", type=int, default=2, help="worker processes for EACH forecaster (same for both)"
    )
    parser.add_argument("--only", choices=["ours", "statsforecast"], help="run one forecaster")
    parser.add_argument("--worker", choices=["ours", "statsforecast"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        run_worker(args.worker, args.data, args.out, args.jobs)
        return 0

    names = [args.only] if args.only else ["ours", "statsforecast"]
    if "statsforecast" in names:
        try:
            import statsforecast  # noqa: F401
        except ImportError:
            print("statsforecast is not installed (pip install -e '.[forecast-bench]'); running ours only")
            names = ["ours"]

    data = make_data(args.series, args.length, args.seed)
    train, test = data[:, : args.length], data[:, args.length :]
    print(
        f"{args.series} daily series x {args.length} points (AR(1) phi~U(0.3,0.9) + weekly season + noise, "
        f"seed {args.seed}), horizon {HORIZON}, {args.jobs} worker process(es) each, cold start in a fresh process",
        flush=True,
    )
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data_path = workdir / "data.npz"
        np.savez(data_path, train=train)
        with terminal_progress("forecast bench", unit="libraries") as report:
            for done, name in enumerate(names):
                report(f"{name}: fitting {len(train)} series", done, len(names))
                res = run_cold(name, data_path, args.jobs, workdir)
                fc = res.pop("forecasts")
                res["mase7"] = float(
                    np.mean([mase(train[i], test[i], fc[i], SEASON) for i in range(len(fc))])
                )
                res["mase1"] = float(np.mean([mase(train[i], test[i], fc[i], 1) for i in range(len(fc))]))
                results[name] = res

    print(
        f"{'forecaster':<34}{'MASE (s-naive)':>15}{'MASE (naive)':>14}{'wall s':>9}{'CPU s':>9}{'fit s':>9}"
    )
    labels = {"ours": "kaizen (season + ARIMA by AIC)", "statsforecast": "statsforecast AutoARIMA(m=7)"}
    for name, res in results.items():
        print(
            f"{labels[name]:<34}{res['mase7']:>15.3f}{res['mase1']:>14.3f}"
            f"{res['wall']:>9.1f}{res['cpu']:>9.1f}{res['fit']:>9.1f}"
        )
    if len(results) == 2:
        ours, peer = results["ours"], results["statsforecast"]
        wall_ratio = ours["wall"] / peer["wall"]
        cpu_ratio = ours["cpu"] / peer["cpu"]
        mase_ratio = ours["mase7"] / peer["mase7"]
        print(
            f"ratios ours/statsforecast: MASE {mase_ratio:.3f}, wall time {wall_ratio:.3f} "
            f"(1/{1 / wall_ratio:.0f}), CPU time {cpu_ratio:.3f} (1/{1 / cpu_ratio:.0f})"
        )
        verdict = ours["mase7"] <= peer["mase7"] and wall_ratio <= 0.25
        print(f"target (MASE no worse, at most 1/4 of the time): {'met' if verdict else 'NOT met'}")
        print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}))
        return 0 if verdict else 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
