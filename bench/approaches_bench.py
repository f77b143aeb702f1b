"""Approaches 1-3 on the same runs (issue 14): synthetic isoFLOP sweeps from known laws (does each
approach recover the law's a = beta/(alpha+beta) within its CI?) and Epoch AI's real points.

    python bench/approaches_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.approaches import compare, holdout_check, synthetic_sweep
from scaling.data import CHINCHILLA_POINTS
from scaling.laws import get_law
from scaling.observations import read_observations


def show(title: str, obs, true_a: float | None) -> None:
    t = time.perf_counter()
    r = compare(obs, n_boot=300)
    print(f"\n{title}: {len(obs)} points" + (f", true a = {true_a:.4f}" if true_a else "")
          + f" ({time.perf_counter() - t:.1f} s)")
    for name, a in r["approaches"].items():
        lo, hi = a["ci"]["a"] or (float("nan"), float("nan"))
        inside = "" if true_a is None else ("  true a inside CI" if lo <= true_a <= hi else "  TRUE a OUTSIDE CI")
        print(f"  {name}: a = {a['a']:.4f} [{lo:.4f}, {hi:.4f}], N_opt at {r['reference_flops']:.2g} FLOPs = "
              f"{a['params_opt_at_reference']:.3g}{inside}")
    for name, why in r["skipped"].items():
        print(f"  {name}: skipped ({why})")
    if r["disagreement"]:
        print(f"  disagreement: N_opt differs {r['disagreement']['params_opt_ratio']:.2f}x between approaches")
    h = holdout_check(obs)
    print(f"  held-out largest budget ({h['held_out_flops']:.2g} FLOPs, {h['held_out_points']} runs): loss error "
          f"mean {h['loss_error_mean_abs']:.2%}, max {h['loss_error_max_abs']:.2%}"
          + (f"; N_opt observed {h['params_opt_observed']:.3g}, approach 3 {h['params_opt_approach_3']:.3g}"
             if "params_opt_observed" in h else ""))


def main() -> None:
    for name in ("epoch-2024", "chinchilla-2022"):
        law = get_law(name)
        for seed in (0, 1):
            show(f"synthetic sweep from {name} (5 budgets 1e17-1e19, 7 sizes, 6 checkpoints, 0.5% noise, seed {seed})",
                 synthetic_sweep(law, seed=seed), law.a_exponent)
    show("Epoch AI's 245 extracted Chinchilla points (real; final losses only)", read_observations(CHINCHILLA_POINTS),
         None)


if __name__ == "__main__":
    main()
