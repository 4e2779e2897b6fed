"""Bench: a 1000-run entry-timing Monte Carlo, kaizen's vectorized engine against vectorbt.

Same inputs for both (random-walk prices of N instruments x B bars, random entry signals, time
exits, fees and slippage; run r jitters every entry by its own offset from the stream
(seed, r)), each engine in a fresh Python process, so imports and vectorbt's numba compilation
(into an empty NUMBA_CACHE_DIR unless --warm-numba-cache) are part of its wall time. Prints both
wall times, the ratio, each child's peak memory (ru_maxrss) and the largest difference between
the two engines' per-run results.

    python bench/backtest.py                      # 1000 runs x 50 instruments x 2880 bars
    python bench/backtest.py --runs 100 --bars 960  # a quick look
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEES = 0.002
SLIPPAGE = 0.005
INIT_CASH = 100.0


def make_inputs(n_instruments: int, n_bars: int, signal_rate: float, seed: int) -> dict[str, np.ndarray]:
    """Prediction-market-like prices (logistic random walks) and random entry signals, (instruments x bars)."""
    rng = np.random.default_rng(seed)
    start = rng.normal(0, 1, (n_instruments, 1))
    logit = start + np.cumsum(rng.normal(0, 0.05, (n_instruments, n_bars)), axis=1)
    close = np.clip(1 / (1 + np.exp(-logit)), 0.001, 0.999)
    entries = rng.random((n_instruments, n_bars)) < signal_rate
    fixed_exits = rng.random((n_instruments, n_bars)) < signal_rate / 4  # opposite-signal exits
    return {"close": close, "entries": entries, "fixed_exits": fixed_exits}


def child_ours(inputs: Path, out: Path, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    from kaizen_pipeline.backtest.engine import CostModel
    from kaizen_pipeline.backtest.monte_carlo import TimingInputs, entry_timing_runs

    data = np.load(inputs)
    timing = TimingInputs(data["close"], data["entries"], data["fixed_exits"], args.holding)
    result = entry_timing_runs(
        timing,
        runs=args.runs,
        shift_bars=args.shift,
        shift_mode=args.shift_mode,
        seed=args.seed,
        costs=CostModel(FEES, SLIPPAGE),
        init_cash=INIT_CASH,
    )
    np.savez(
        out,
        total_return=result["total_return"].to_numpy(),
        max_drawdown=result["max_drawdown"].to_numpy(),
        compute_seconds=time.perf_counter() - t0,
    )


def child_vectorbt(inputs: Path, out: Path, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    import vectorbt as vbt

    vbt.settings.caching["enabled"] = False  # its method cache keeps every chunk's arrays alive

    from kaizen_pipeline.backtest.metrics import drawdown_stats
    from kaizen_pipeline.backtest.monte_carlo import events_to_dense, jittered_events

    data = np.load(inputs)
    close, entries, fixed = data["close"], data["entries"], data["fixed_exits"]
    n_cols, n_bars = close.shape
    entry_col, entry_bar = np.nonzero(entries)
    fixed_col, fixed_bar = np.nonzero(fixed)
    total = np.empty(args.runs)
    drawdown = np.empty(args.runs)
    for lo in range(0, args.runs, args.vbt_chunk_runs):
        run_ids = np.arange(lo, min(lo + args.vbt_chunk_runs, args.runs))
        n_runs = len(run_ids)
        col, bar, is_entry = jittered_events(
            entry_col, entry_bar, fixed_col, fixed_bar, run_ids,
            n_cols=n_cols, n_bars=n_bars, shift_bars=args.shift, holding_bars=args.holding, seed=args.seed,
            shift_mode=args.shift_mode,
        )  # fmt: skip
        ent, ex = events_to_dense(col, bar, is_entry, n_runs * n_cols, n_bars)
        # vectorbt iterates bars x columns: hand it C-ordered (bars x columns) arrays
        pf = vbt.Portfolio.from_signals(
            np.ascontiguousarray(np.tile(close.T, (1, n_runs))),
            np.ascontiguousarray(ent.T),
            np.ascontiguousarray(ex.T),
            fees=FEES,
            slippage=SLIPPAGE,
            init_cash=INIT_CASH,
        )
        del ent, ex
        value = pf.value().to_numpy()
        book = value.reshape(n_bars, n_runs, n_cols).mean(axis=2).T
        total[run_ids] = book[:, -1] / INIT_CASH - 1.0
        drawdown[run_ids] = drawdown_stats(np.ascontiguousarray(book), INIT_CASH)[0]
        del pf, value
        gc.collect()
    np.savez(out, total_return=total, max_drawdown=drawdown, compute_seconds=time.perf_counter() - t0)


def run_child(
    name: str, inputs: Path, out: Path, argv: list[str], env: dict[str, str]
) -> tuple[float, float, float]:
    """Run one engine in a fresh interpreter; return (wall seconds, CPU seconds, peak RSS in GB)."""
    cmd = [sys.executable, __file__, "--child", name, "--inputs", str(inputs), "--out", str(out), *argv]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} child failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime  # unaffected by other load on a shared machine
    return wall, cpu, usage.ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--bars", type=int, default=2880, help="2880 = 30 days of 15-minute bars")
    parser.add_argument("--shift", type=int, default=4, help="entry jitter window, bars")
    parser.add_argument("--shift-mode", choices=["delay", "symmetric"], default="symmetric")
    parser.add_argument("--holding", type=int, default=16, help="time exit, bars after entry")
    parser.add_argument(
        "--signal-rate", type=float, default=0.01, help="entry signals per bar and instrument"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--vbt-chunk-runs", type=int, default=100, help="runs per vectorbt call (memory)")
    parser.add_argument("--warm-numba-cache", action="store_true", help="let vectorbt reuse its numba cache")
    parser.add_argument("--child", choices=["ours", "vectorbt"], help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "ours":
        child_ours(args.inputs, args.out, args)
        return
    if args.child == "vectorbt":
        child_vectorbt(args.inputs, args.out, args)
        return

    # find_spec, not import: a child's ru_maxrss starts from the parent's size at fork
    if importlib.util.find_spec("vectorbt") is None:
        raise SystemExit('vectorbt is not installed: pip install -e ".[parity]"')

    argv = [
        f"--runs={args.runs}", f"--shift={args.shift}", f"--shift-mode={args.shift_mode}", f"--holding={args.holding}",
        f"--seed={args.seed}", f"--vbt-chunk-runs={args.vbt_chunk_runs}",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-") as tmp:
        tmpdir = Path(tmp)
        inputs = tmpdir / "inputs.npz"
        data = make_inputs(args.instruments, args.bars, args.signal_rate, args.seed)
        np.savez(inputs, **data)
        cells = args.runs * args.instruments * args.bars
        print(
            f"Monte Carlo entry timing: {args.runs} runs x {args.instruments} instruments x {args.bars} bars "
            f"= {cells / 1e6:.0f} M cells; {int(data['entries'].sum())} entry signals, shift {args.shift_mode} {args.shift} bars, "
            f"hold {args.holding} bars, fees {FEES}, slippage {SLIPPAGE}"
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = (
            str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
        )
        ours_wall, ours_cpu, ours_mem = run_child("ours", inputs, tmpdir / "ours.npz", argv, env)
        vbt_env = dict(env)
        if not args.warm_numba_cache:
            vbt_env["NUMBA_CACHE_DIR"] = str(tmpdir / "numba-cache")  # empty: compile time included
        vbt_wall, vbt_cpu, vbt_mem = run_child("vectorbt", inputs, tmpdir / "vbt.npz", argv, vbt_env)
        ours = np.load(tmpdir / "ours.npz")
        peer = np.load(tmpdir / "vbt.npz")
        d_ret = float(np.max(np.abs(ours["total_return"] - peer["total_return"])))
        d_dd = float(np.max(np.abs(ours["max_drawdown"] - peer["max_drawdown"])))
        print(
            f"kaizen engine: wall {ours_wall:6.1f} s, CPU {ours_cpu:6.1f} s "
            f"(in-process {float(ours['compute_seconds']):.1f} s), peak memory {ours_mem:.2f} GB"
        )
        compile_note = "numba cache warm" if args.warm_numba_cache else "numba compile included"
        print(
            f"vectorbt     : wall {vbt_wall:6.1f} s, CPU {vbt_cpu:6.1f} s "
            f"(in-process {float(peer['compute_seconds']):.1f} s, {compile_note}), peak memory {vbt_mem:.2f} GB"
        )
        ratio = vbt_wall / ours_wall
        print(
            f"speed-up: {ratio:.1f}x wall, {vbt_cpu / ours_cpu:.1f}x CPU faster than vectorbt (target >= 5x); "
            f"kaizen peak memory {ours_mem:.2f} GB (target < 4 GB)"
        )
        print(
            f"agreement: max |total_return diff| {d_ret:.2e}, max |max_drawdown diff| {d_dd:.2e} over {args.runs} runs"
        )
        ok = ratio >= 5 and ours_mem < 4 and d_ret < 1e-9 and d_dd < 1e-9
        print("PASS" if ok else "FAIL")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
