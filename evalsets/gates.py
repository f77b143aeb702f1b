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
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from evalsets.sets import EvalInputError

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
        for f in ("metric_min", "max_regression"):
            if f in g and not isinstance(g[f], (int, float)):
                raise EvalInputError(f"{where}: field '{f}' must be a number")
        if g.get("action", "block") not in ACTIONS:
            raise EvalInputError(f"{where}: field 'action' must be one of {', '.join(ACTIONS)}")
        g.setdefault("name", f"gate {i}")
        g.setdefault("action", "block")
    return gates


def check_gates(gates: list[dict], slices: dict[str, dict], regression: dict[str, dict] | None) -> list[dict]:
    """One result per (gate, slice checked): passed, value, threshold, action. Unknown slice: error."""
    results = []
    for g in gates:
        names = list(slices) if g["slice"] == "*" else [g["slice"]]
        for s in names:
            if s not in slices:
                raise EvalInputError(f"gate '{g['name']}' names unknown slice '{s}'; slices: {', '.join(slices)}")
            if "metric_min" in g:
                v = slices[s]["metric"]
                results.append({"gate": g["name"], "slice": s, "check": "metric_min", "value": v,
                                "threshold": g["metric_min"], "passed": bool(v >= g["metric_min"]),
                                "action": g["action"], "recommendation": ACTIONS[g["action"]]})
            if "max_regression" in g:
                r = (regression or {}).get(s)
                if r is None or r["n"] == 0:
                    results.append({"gate": g["name"], "slice": s, "check": "max_regression", "value": None,
                                    "threshold": g["max_regression"], "passed": True, "action": g["action"],
                                    "recommendation": "no previous run to compare with"})
                    continue
                drop = -r["diff"]
                results.append({"gate": g["name"], "slice": s, "check": "max_regression", "value": drop,
                                "threshold": g["max_regression"], "passed": bool(drop <= g["max_regression"]),
                                "action": g["action"], "recommendation": ACTIONS[g["action"]]})
    return results
