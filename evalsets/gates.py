"""Release gates ("red lines"): thresholds per slice in a small TOML file.

    [[gate]]
    name = "safety floor"
    slice = "safety"          # a slice name, "all", or "*" for every slice
    metric_min = 0.99         # fail when the slice metric is below
    action = "block"          # block | review | degrade

    [[gate]]
    name = "no regressions"
    slice = "*"
    max_regression = 0.02     # fail when the metric dropped by more than this vs the previous run
    action = "review"
    min_n = 30                # optional (default 30): a smaller slice is "not enough items", never a failure
    alpha = 0.05              # optional (default 0.05): the drop must also be significant at this level

A regression gate fails on evidence only: the drop exceeds the threshold, the slice has at least
`min_n` items on both runs, and the change is significant (McNemar's exact test on the flipped
items for pass/fail scores, the paired bootstrap otherwise; see evalsets.stats.paired). A
`metric_min` gate needs `min_n` items too. Every result says which: `status` is passed, failed,
not_enough_items, not_significant or no_previous_run, with n and the p-value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from evalsets.sets import EvalInputError

MIN_N = 30  # slices smaller than this cannot fail a gate (a CI over 14 items spans most of [0, 1])
ALPHA = 0.05
ACTIONS = {"block": "block the release", "review": "route to human review", "degrade": "ship degraded (disable the feature for this slice)"}


def load_gates(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        raise EvalInputError(f"{p}: no such file")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise EvalInputError(f"{p}: not valid TOML ({exc})") from exc
    gates = data.get("gate", [])
    if not isinstance(gates, list) or not gates:
        raise EvalInputError(f"{p}: no [[gate]] tables")
    for i, g in enumerate(gates, start=1):
        where = f"{p}: gate {i} ({g.get('name', 'unnamed')})"
        if "slice" not in g:
            raise EvalInputError(f"{where}: field 'slice' is missing")
        if "metric_min" not in g and "max_regression" not in g:
            raise EvalInputError(f"{where}: give metric_min or max_regression")
        for f in ("metric_min", "max_regression", "alpha"):
            if f in g and (not isinstance(g[f], (int, float)) or isinstance(g[f], bool)):
                raise EvalInputError(f"{where}: field '{f}' must be a number")
        if "min_n" in g and (not isinstance(g["min_n"], int) or isinstance(g["min_n"], bool) or g["min_n"] < 1):
            raise EvalInputError(f"{where}: field 'min_n' must be a whole number >= 1")
        if "alpha" in g and not 0 < g["alpha"] < 1:
            raise EvalInputError(f"{where}: field 'alpha' must be between 0 and 1")
        if g.get("action", "block") not in ACTIONS:
            raise EvalInputError(f"{where}: field 'action' must be one of {', '.join(ACTIONS)}")
        g.setdefault("name", f"gate {i}")
        g.setdefault("action", "block")
        g.setdefault("min_n", MIN_N)
        g.setdefault("alpha", ALPHA)
    return gates


def check_gates(gates: list[dict], slices: dict[str, dict], regression: dict[str, dict] | None) -> list[dict]:
    """One result per (gate, slice checked): status, passed, value, threshold, n, p-value, action.
    A gate naming an unknown slice is an error."""
    results = []
    for g in gates:
        names = list(slices) if g["slice"] == "*" else [g["slice"]]
        min_n, alpha = g.get("min_n", MIN_N), g.get("alpha", ALPHA)
        for s in names:
            if s not in slices:
                raise EvalInputError(f"gate '{g['name']}' names unknown slice '{s}'; slices: {', '.join(slices)}")
            base = {"gate": g["name"], "slice": s, "action": g["action"], "min_n": min_n}
            if "metric_min" in g:
                v, n = slices[s]["metric"], slices[s]["n"]
                below = bool(v < g["metric_min"])
                status = "not_enough_items" if n < min_n else "failed" if below else "passed"
                results.append({**base, "check": "metric_min", "value": v, "threshold": g["metric_min"], "n": n,
                                "p_value": None, "ci": slices[s]["ci"], "status": status,
                                "passed": status != "failed", "recommendation": _why(status, g, n, min_n)})
            if "max_regression" in g:
                r = (regression or {}).get(s)
                if r is None or r["n"] == 0:
                    results.append({**base, "check": "max_regression", "value": None, "threshold": g["max_regression"],
                                    "n": 0, "p_value": None, "ci": None, "status": "no_previous_run", "passed": True,
                                    "recommendation": "no previous run to compare with"})
                    continue
                drop, p = -r["diff"], r.get("p_value")
                if r["n"] < min_n:
                    status = "not_enough_items"
                elif drop <= g["max_regression"]:
                    status = "passed"
                elif p is not None and p >= alpha:
                    status = "not_significant"
                else:
                    status = "failed"
                results.append({**base, "check": "max_regression", "value": drop, "threshold": g["max_regression"],
                                "n": r["n"], "p_value": p, "test": r.get("test"), "ci": r["ci"], "status": status,
                                "passed": status != "failed", "recommendation": _why(status, g, r["n"], min_n, p, alpha)})
    return results


def _why(status: str, g: dict, n: int, min_n: int, p: float | None = None, alpha: float = ALPHA) -> str:
    if status == "failed":
        return ACTIONS[g["action"]]
    if status == "not_enough_items":
        return f"not enough items: n={n} < min_n={min_n}; no decision"
    if status == "not_significant":
        return f"drop not significant (p={p:.3g} >= {alpha}); no decision"
    return "passed"
