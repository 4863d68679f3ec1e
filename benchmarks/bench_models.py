"""Model fits: ours vs lifetimes on the same customers, in one process; prints the ratios.

    python -m benchmarks.bench_models [--bgnbd-customers 1000000] [--pnbd-customers 100000]

Data: the deterministic generator's transactions (BG/NBD + Gamma-Gamma process, CDNOW-like
parameters in days), summarised by our engine in days. Both libraries get the same per-customer
arrays (frequency, recency, T); our time includes compressing them into unique histories.
Targets (issue 3): BG/NBD >= 30x faster at 1M customers, Pareto/NBD >= 50x at 100k, same params.
(Log-likelihoods are compared in the tests on CDNOW: lifetimes rescales time internally, so its
stored likelihood is not on the data's scale.)
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import best_of, markdown_table, max_rel_diff, quiet, transactions_file
from cltv_api.engine import Engine, summarize
from models import BGNBD, MBGNBD, GammaGamma, ParetoNBD


def per_customer(n_customers: int) -> pd.DataFrame:
    path = transactions_file(n_customers)
    with Engine.duckdb() as engine:
        return summarize(engine.table(path), "days").to_pandas()


def compare(
    name: str, ours_cls: Any, theirs_cls: Any, data: pd.DataFrame, repeat: int
) -> dict[str, Any]:
    x, t_x, T = (data[c].to_numpy() for c in ("frequency", "recency", "T"))
    ours_s, ours = best_of(lambda: ours_cls().fit(x, t_x, T), repeat)
    with quiet():
        theirs_s, theirs = best_of(
            lambda: theirs_cls().fit(data["frequency"], data["recency"], data["T"]), 1
        )
    their_params = {k: float(v) for k, v in theirs.params_.items()}
    return {
        "model": name,
        "customers": len(data),
        "distinct histories": int(np.unique(np.column_stack([x, t_x, T]), axis=0).shape[0]),
        "ours (s)": ours_s,
        "lifetimes (s)": theirs_s,
        "speed-up": theirs_s / ours_s,
        "max rel. param diff": max_rel_diff(ours.params_, their_params),
    }


def compare_spend(data: pd.DataFrame, repeat: int) -> dict[str, Any]:
    from lifetimes import GammaGammaFitter

    rep = data[data["frequency"] > 0]
    x, m = rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy()
    ours_s, ours = best_of(lambda: GammaGamma().fit(x, m), repeat)
    with quiet():
        theirs_s, theirs = best_of(
            lambda: GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"]), 1
        )
    their = dict(theirs.params_)
    their_params = {"p": their["p"], "q": their["q"], "gamma": their["v"]}
    return {
        "model": "Gamma-Gamma",
        "customers": len(rep),
        "distinct histories": int(np.unique(np.column_stack([x, m]), axis=0).shape[0]),
        "ours (s)": ours_s,
        "lifetimes (s)": theirs_s,
        "speed-up": theirs_s / ours_s,
        "max rel. param diff": max_rel_diff(ours.params_, their_params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bgnbd-customers", type=int, default=1_000_000)
    parser.add_argument("--pnbd-customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our fit (best is kept)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    with quiet():
        from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    big = per_customer(args.bgnbd_customers)
    small = per_customer(args.pnbd_customers)
    rows = [
        compare("BG/NBD", BGNBD, BetaGeoFitter, big, args.repeat),
        compare("MBG/NBD", MBGNBD, ModifiedBetaGeoFitter, big, args.repeat),
        compare("Pareto/NBD", ParetoNBD, ParetoNBDFitter, small, args.repeat),
        compare_spend(big, args.repeat),
    ]
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(markdown_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
