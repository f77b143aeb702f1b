"""The fit task: read observations, fit (+ bootstrap), store observations and fit, draw plots.

A fit with the same observations and config as a stored one is returned from the store.
"""

from __future__ import annotations

from pathlib import Path

from scaling.fit import ChinchillaFitter, FitConfig
from scaling.fit_other import DataConstrainedFitter, KaplanFitter
from scaling.observations import read_observations
from warehouse import scaling_store as store
from warehouse.db import session
from warehouse.outputs import OutputDir
from warehouse.runlog import finish_run, skip_run, stable_hash, start_run

LAWS = ("chinchilla", "kaplan", "data-constrained")
PLOT_FILES = ("fit.png", "residuals.png", "isoflop.png")


def fit_file(db, path: str | Path, law: str = "chinchilla", method: str = "huber", bootstrap: int = 0,
             name: str | None = None, drop_outliers: int = 0, fixed: dict[str, float] | None = None,
             seed: int = 0, plots_dir: str | Path | None = None, progress=None, force: bool = False) -> dict:
    if law not in LAWS:
        raise ValueError(f"unknown law form '{law}'; choose one of {', '.join(LAWS)}")
    if method not in ("huber", "likelihood"):
        raise ValueError(f"unknown method '{method}'; choose huber or likelihood")
    unsupported = [opt for opt, used in (("--method likelihood", method != "huber"),
                                         (f"--bootstrap {bootstrap}", bootstrap > 0),
                                         (f"--drop-outliers {drop_outliers}", drop_outliers > 0),
                                         ("--fix " + ", ".join(sorted(fixed or {})),
                                          bool(fixed) and law != "data-constrained")) if used]
    if law == "data-constrained" and fixed and set(fixed) - {"R_D_star", "R_N_star"}:
        raise ValueError(f"--law data-constrained can --fix R_D_star and R_N_star (the decay constants), not "
                         f"{', '.join(sorted(set(fixed) - {'R_D_star', 'R_N_star'}))}")
    if law != "chinchilla" and unsupported:  # rejected, never silently ignored (nor stored as applied)
        raise ValueError(f"--law {law} does not support {'; '.join(unsupported)}: these apply to --law chinchilla "
                         "only")
    plots = OutputDir(plots_dir, force=force, what="plots folder") if plots_dir else None
    if plots:
        plots.check_writable(PLOT_FILES)
    obs = read_observations(path, min_points=5 - len(fixed or {}) + 1 if law == "chinchilla" else 5)
    frame = obs.frame()
    inputs_hash = stable_hash(frame.to_dict(orient="list"))
    config = {"law": law, "method": method, "bootstrap": bootstrap, "drop_outliers": drop_outliers,
              "fixed": dict(sorted((fixed or {}).items())), "seed": seed}
    name = name or Path(path).stem
    with session(db) as con:
        store.save_observations(con, inputs_hash, str(path), frame)
        cached = store.find_fit(con, inputs_hash, config)
        if cached is not None and cached["name"] == name:  # same points, same options: no work
            skip_run(con, "fit", inputs_hash, config, None, counts_in=len(obs))
            return _report(cached, cached=True)
        run = start_run(con, "fit", inputs_hash, config, counts_in=len(obs))
        try:
            row = _fit(obs, law, method, bootstrap, drop_outliers, fixed, seed, progress)
        except Exception as exc:
            finish_run(con, run, status="failed", message=str(exc)[:500])
            raise
        row.update(name=name, law=law, inputs_hash=inputs_hash, config=config)
        store.save_fit(con, row)
        finish_run(con, run, counts_out=row["n_points"], details={"name": name, "params": row["params"]})
    report = _report(row, cached=False)
    if plots:
        from scaling.plots import plot_fit

        report["plots"] = [str(plots.write_bytes(n, png)) for n, png in plot_fit(obs, row["_law"]).items()]
    return report


def _fit(obs, law, method, bootstrap, drop_outliers, fixed, seed, progress) -> dict:
    if law == "chinchilla":
        f = ChinchillaFitter(FitConfig(method=method, drop_outliers=drop_outliers,
                                       fixed=tuple(sorted((fixed or {}).items())))).fit(obs)
        if bootstrap:
            f.bootstrap(obs, n=bootstrap, seed=seed, progress=progress)
        extra = {"allocation": {"a": f.law_.a_exponent, "b": f.law_.b_exponent, "G": f.law_.G}}
        if method == "likelihood":
            extra["sigma"] = f.sigma_
    elif law == "kaplan":
        if fixed:
            raise ValueError("--fix applies to the chinchilla and data-constrained laws")
        f = KaplanFitter().fit(obs)
        extra = {}
    else:
        f = DataConstrainedFitter(fixed=fixed).fit(obs)
        if bootstrap:
            f.bootstrap(obs, n=bootstrap, seed=seed, progress=progress)
        extra = {"base_points": f.base_points_}
    return {
        "params": f.params_, "objective": f.objective_, "n_points": f.n_points_,
        "n_at_best": f.n_at_best_, "converged": f.converged_, "seconds": getattr(f, "seconds_", None),
        "ci": {k: list(v) for k, v in getattr(f, "ci_", {}).items()} or None,
        "poorly_determined": getattr(f, "poorly_determined_", None), "extra": extra,
        "degenerate_resamples": getattr(f, "degenerate_", None),
        "n_starts": getattr(f, "n_starts_", None), "_law": f.law_, "_residuals": f.residuals_,
        "samples": f.bootstrap_samples_[:, :5].round(10).tolist() if hasattr(f, "bootstrap_samples_") else None,
    }


def _report(row: dict, cached: bool) -> dict:
    out = {"name": row["name"], "law": row["law"], "params": row["params"], "ci": row.get("ci") or {},
           "objective": row["objective"], "n_points": row["n_points"], "n_at_best": row.get("n_at_best"),
           "converged": row.get("converged"), "poorly_determined": row.get("poorly_determined") or [],
           "inputs_hash": row["inputs_hash"], "config": row["config"], "cached": cached}
    if row.get("extra"):
        out.update(row["extra"])
    if row.get("n_starts"):
        out["n_starts"] = row["n_starts"]
    return out
