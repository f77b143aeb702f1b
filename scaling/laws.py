"""Loss laws L(N, D) as small frozen dataclasses, and the published laws that ship with Taomi.

N: parameters, D: training tokens, U: unique tokens (data-constrained form). All functions take
scalars or numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path


def _pos(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _accounting(value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"accounting must be one of {', '.join(allowed)} for this law, not {value!r}")


@dataclass(frozen=True)
class AllocationLaw:
    """A published compute-optimal allocation, as power laws of compute in a declared accounting:
    tokens D_opt = tokens_coef · C^tokens_exp and the model size = model_coef · C^model_exp
    (parameters under `6nd` and `kaplan`, FLOPs per token M under `deepseek`). Either may be
    left out; it is then what the budget leaves: N = C / (6 D) or M = C / D. It predicts no loss.
    Llama 3 (Dubey et al. 2024, sec. 3.2.1) publishes only the token law; DeepSeek LLM (Bi et al.
    2024, eq. 4) both, in M·D."""

    tokens_coef: float | None = None
    tokens_exp: float | None = None
    model_coef: float | None = None
    model_exp: float | None = None
    accounting: str = "6nd"
    name: str = "allocation"
    source: str = ""

    kind = "allocation"

    def __post_init__(self) -> None:
        _accounting(self.accounting, ("6nd", "kaplan", "deepseek"))
        pairs = [(self.tokens_coef, self.tokens_exp), (self.model_coef, self.model_exp)]
        if not any(c is not None for c, _ in pairs):
            raise ValueError("an allocation law needs tokens_coef/tokens_exp or model_coef/model_exp")
        for (c, e), what in zip(pairs, ("tokens", "model")):
            if (c is None) != (e is None):
                raise ValueError(f"{what}_coef and {what}_exp go together")
            if c is not None:
                _pos(f"{what}_coef", c)
                if not (isinstance(e, (int, float)) and 0 < e < 1):
                    raise ValueError(f"{what}_exp must be in (0, 1), got {e!r}")

    @property
    def per_token(self) -> float:
        """C = per_token x model x D: 6 for parameters, 1 for FLOPs per token."""
        return 1.0 if self.accounting == "deepseek" else 6.0

    def split(self, C):
        """(model, tokens) at compute C in this law's accounting; model in its unit."""
        import numpy as np

        C = np.asarray(C, dtype=float)
        if self.tokens_coef is not None:
            D = self.tokens_coef * C ** self.tokens_exp
            M = self.model_coef * C ** self.model_exp if self.model_coef is not None else C / (self.per_token * D)
        else:
            M = self.model_coef * C ** self.model_exp
            D = C / (self.per_token * M)
        return M, D

    @property
    def model_unit(self) -> str:
        return "flops_per_token" if self.accounting == "deepseek" else "params"

    def predict_loss(self, N, D):
        raise ValueError(f"the law {self.name} is a compute-optimal allocation (N and D as power laws of C): it predicts "
                         "no loss; use a Chinchilla-form law for losses, targets and inverse queries")

    def params(self) -> dict[str, float]:
        return {k: v for k, v in (("tokens_coef", self.tokens_coef), ("tokens_exp", self.tokens_exp),
                                  ("model_coef", self.model_coef), ("model_exp", self.model_exp)) if v is not None}


@dataclass(frozen=True)
class ChinchillaLaw:
    """L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = "chinchilla"
    source: str = ""
    accounting: str = "6nd"

    def __post_init__(self) -> None:
        for k in ("E", "A", "B", "alpha", "beta"):
            _pos(k, getattr(self, k))
        _accounting(self.accounting, ("6nd", "kaplan"))

    kind = "chinchilla"

    def predict_loss(self, N, D):
        import numpy as np

        N = np.asarray(N, dtype=float)
        D = np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, eq. 4)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))

    @property
    def a_exponent(self) -> float:
        """N_opt ∝ C^a with a = beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b_exponent(self) -> float:
        """D_opt ∝ C^b with b = alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    def params(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}


@dataclass(frozen=True)
class KaplanLaw:
    """L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D + L_inf (Kaplan et al. 2020, eq. 1.5, table 2)."""

    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float
    L_inf: float = 0.0
    name: str = "kaplan"
    source: str = ""
    # How a budget is split: "frontier" = Kaplan's compute-efficient frontier (sec. 6, fig. 14:
    # N = 1.3e9 C_min^0.73, from L(N, S_min) at the critical batch size; N non-embedding);
    # "eq1.5" = the minimum of eq. 1.5 along C = 6ND (N ~ C^0.575: not what Kaplan published).
    allocation: str = "frontier"
    accounting: str = "kaplan"

    kind = "kaplan"

    def __post_init__(self) -> None:
        for k in ("N_c", "D_c", "alpha_N", "alpha_D"):
            _pos(k, getattr(self, k))
        if not (math.isfinite(self.L_inf) and self.L_inf >= 0):
            raise ValueError(f"L_inf must be >= 0, got {self.L_inf!r}")
        if self.allocation not in ("frontier", "eq1.5"):
            raise ValueError(f"allocation must be 'frontier' or 'eq1.5', got {self.allocation!r}")

    def predict_loss(self, N, D):
        import numpy as np

        N = np.asarray(N, dtype=float)
        D = np.asarray(D, dtype=float)
        return ((self.N_c / N) ** (self.alpha_N / self.alpha_D) + self.D_c / D) ** self.alpha_D + self.L_inf

    def params(self) -> dict[str, float]:
        return {"N_c": self.N_c, "D_c": self.D_c, "alpha_N": self.alpha_N, "alpha_D": self.alpha_D,
                "L_inf": self.L_inf}


@dataclass(frozen=True)
class DataConstrainedLaw:
    """Chinchilla form on effective data and parameters (Muennighoff et al. 2023, eq. 5).

    Repeated tokens are worth less: with U unique tokens seen R_D = D/U - 1 extra times,
    D' = U + U R_D* (1 - exp(-R_D / R_D*)). Parameters in excess of what U tokens support decay
    the same way with R_N* when `U_N` is given (here U_N = the compute-optimal N for U tokens).
    """

    base: ChinchillaLaw
    R_D_star: float = 15.4
    R_N_star: float = 5.3
    name: str = "data-constrained"
    source: str = ""

    kind = "data-constrained"

    @property
    def accounting(self) -> str:
        return self.base.accounting

    def __post_init__(self) -> None:
        _pos("R_D_star", self.R_D_star)
        _pos("R_N_star", self.R_N_star)

    def effective_tokens(self, D, U):
        """D' = U + U R_D* (1 - exp(-R_D/R_D*)), R_D = D/U - 1 (no repetition: D' = D)."""
        import numpy as np

        D = np.asarray(D, dtype=float)
        U = np.asarray(U, dtype=float)
        U_used = np.minimum(U, D)
        R = np.maximum(D / U_used - 1.0, 0.0)
        return U_used + U_used * self.R_D_star * (1.0 - np.exp(-R / self.R_D_star))

    def effective_params(self, N, U):
        """N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N: the compute-optimal N for U tokens."""
        import numpy as np

        N = np.asarray(N, dtype=float)
        U_N = np.minimum(N, _u_n(self.base, U))
        R = np.maximum(N / U_N - 1.0, 0.0)
        return U_N + U_N * self.R_N_star * (1.0 - np.exp(-R / self.R_N_star))

    def predict_loss(self, N, D, U=None):
        if U is None:
            return self.base.predict_loss(N, D)
        return self.base.predict_loss(self.effective_params(N, U), self.effective_tokens(D, U))

    def params(self) -> dict[str, float]:
        return {**self.base.params(), "R_D_star": self.R_D_star, "R_N_star": self.R_N_star}


PF_DAY_FLOPS = 1e15 * 86_400
KAPLAN_FRONTIER_N, KAPLAN_FRONTIER_EXP = 1.3e9, 0.73  # Kaplan et al. 2020, sec. 6.1, fig. 14


def kaplan_frontier_params(C):
    """Kaplan's compute-efficient model size: N = 1.3e9 (C_min / PF-day)^0.73 non-embedding params."""
    import numpy as np

    return KAPLAN_FRONTIER_N * (np.asarray(C, dtype=float) / PF_DAY_FLOPS) ** KAPLAN_FRONTIER_EXP


def _u_n(base: ChinchillaLaw, U):
    """Compute-optimal N for D = U tokens: D_opt = G^-1 (C/6)^b  =>  C/6 = (U G)^(1/b), N = G (C/6)^a."""
    import numpy as np

    c6 = (np.asarray(U, dtype=float) * base.G) ** (1 / base.b_exponent)
    return base.G * c6 ** base.a_exponent


@dataclass(frozen=True)
class Published:
    law: object
    citation: str
    notes: str = ""
    warning: str = ""  # printed with every plan under this law
    samples_file: str | None = None  # bootstrap refits (A, B, E, alpha, beta), a path
    fitted: dict = field(default_factory=dict)  # the ranges it was fitted on: params, tokens, flops -> [lo, hi]
    path: str | None = None  # the law file

    def as_dict(self) -> dict:
        return {"name": self.law.name, "kind": self.law.kind, "accounting": self.law.accounting,
                "params": self.law.params(), "citation": self.citation, "notes": self.notes,
                "warning": self.warning, "fitted": self.fitted, "bootstrap": bool(self.samples_file),
                "default": self.law.name == DEFAULT_LAW}


DEFAULT_LAW = "epoch-2024"
LAWS_DIR = Path(__file__).with_name("data") / "laws"
_KINDS = ("chinchilla", "kaplan", "data-constrained", "allocation")
_KEYS = {"chinchilla": ("E", "A", "B", "alpha", "beta"),
         "kaplan": ("N_c", "D_c", "alpha_N", "alpha_D", "L_inf"),
         "data-constrained": ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
         "allocation": ("tokens_coef", "tokens_exp", "model_coef", "model_exp")}
_OPTIONAL = {"kaplan": ("L_inf",), "allocation": ("tokens_coef", "tokens_exp", "model_coef", "model_exp")}


def law_from_mapping(doc: dict, where: str = "law file") -> Published:
    """A law from a parsed law file (TOML; see scaling/data/laws/*.toml): name, kind, accounting,
    source, notes, warning, samples (a CSV of A, B, E, alpha, beta refits), [params], [fitted].
    Every wrong key is an error naming the file and the key."""
    def bad(msg: str):
        return ValueError(f"{where}: {msg}")

    known = {"name", "kind", "accounting", "source", "notes", "warning", "samples", "params", "fitted"}
    extra = sorted(set(doc) - known)
    if extra:
        raise bad(f"unknown key(s) {', '.join(extra)}; a law file has {', '.join(sorted(known))}")
    name, kind = doc.get("name"), doc.get("kind")
    if not isinstance(name, str) or not name.strip():
        raise bad("name must be a non-empty string")
    if kind not in _KINDS:
        raise bad(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        raise bad("source must say where the law comes from (paper, section, equation)")
    params = doc.get("params")
    if not isinstance(params, dict):
        raise bad("[params] is missing")
    unknown = sorted(set(params) - set(_KEYS[kind]))
    if unknown:
        raise bad(f"[params] has {', '.join(unknown)}, not parameters of a {kind} law ({', '.join(_KEYS[kind])})")
    missing = [k for k in _KEYS[kind] if k not in params and k not in _OPTIONAL.get(kind, ())]
    if missing:
        raise bad(f"[params] lacks {', '.join(missing)}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"[params] {k} must be a number, got {v!r}")
    accounting = doc.get("accounting", "kaplan" if kind == "kaplan" else "6nd")
    fitted = doc.get("fitted", {})
    if not isinstance(fitted, dict):
        raise bad("[fitted] must be a table of ranges")
    for k, v in fitted.items():
        if k not in ("params", "tokens", "flops"):
            raise bad(f"[fitted] {k}: the ranges are params, tokens and flops")
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and x > 0 for x in v)
                and v[0] <= v[1]):
            raise bad(f"[fitted] {k} must be [low, high], two positive numbers, got {v!r}")
    p = {k: float(v) for k, v in params.items()}
    try:
        if kind == "chinchilla":
            law = ChinchillaLaw(**p, name=name, source=source, accounting=accounting)
        elif kind == "kaplan":
            if accounting != "kaplan":
                raise ValueError("a Kaplan law counts non-embedding parameters: accounting = \"kaplan\"")
            law = KaplanLaw(**p, name=name, source=source)
        elif kind == "data-constrained":
            base = ChinchillaLaw(**{k: p[k] for k in _KEYS["chinchilla"]}, name=name + "-base", accounting=accounting)
            law = DataConstrainedLaw(base=base, R_D_star=p["R_D_star"], R_N_star=p["R_N_star"], name=name,
                                     source=source)
        else:
            law = AllocationLaw(**p, accounting=accounting, name=name, source=source)
    except (TypeError, ValueError) as exc:
        raise bad(str(exc)) from None
    samples = doc.get("samples")
    if samples is not None and (kind != "chinchilla" or not isinstance(samples, str)):
        raise bad("samples (a CSV of bootstrap refits A, B, E, alpha, beta) goes with a chinchilla law")
    for k in ("notes", "warning"):
        if not isinstance(doc.get(k, ""), str):
            raise bad(f"{k} must be a string")
    return Published(law, source, doc.get("notes", ""), doc.get("warning", ""), samples,
                     {k: [float(x) for x in v] for k, v in fitted.items()})


def read_law_file(path) -> Published:
    """A law file from disk; a missing, unreadable or malformed file is one error naming it."""
    import tomllib

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such law file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    pub = law_from_mapping(doc, str(path))
    samples = pub.samples_file
    if samples:
        resolved = (path.parent / samples).resolve()
        if not resolved.is_file():
            raise ValueError(f"{path}: samples file {samples} not found (paths are relative to the law file)")
        samples = str(resolved)
    return Published(pub.law, pub.citation, pub.notes, pub.warning, samples, pub.fitted, str(path))


def _shipped() -> dict[str, Published]:
    laws = {}
    for f in sorted(LAWS_DIR.glob("*.toml")):
        pub = read_law_file(f)
        if pub.law.name != f.stem:
            raise ValueError(f"{f}: a shipped law's name must be its file name ({pub.law.name!r})")
        laws[pub.law.name] = pub
    return laws


PUBLISHED: dict[str, Published] = _shipped()


def get_law(name: str):
    """A published law by name; an unknown name is an error listing the known ones."""
    try:
        return PUBLISHED[name].law
    except KeyError:
        raise KeyError(f"unknown law '{name}'; known: {', '.join(sorted(PUBLISHED))}") from None


def published_samples(name: str) -> tuple[ChinchillaLaw, ...] | None:
    """The shipped bootstrap refits of a published law, or None when it ships none."""
    pub = PUBLISHED.get(name)
    return samples_of(pub.samples_file) if pub is not None and pub.samples_file else None


@lru_cache(maxsize=8)
def samples_of(path: str) -> tuple[ChinchillaLaw, ...]:
    """Bootstrap refits from a CSV with a header and columns A, B, E, alpha, beta."""
    import numpy as np

    try:
        rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read bootstrap samples ({exc})") from None
    if rows.shape[1] != 5:
        raise ValueError(f"{path}: bootstrap samples need 5 columns (A, B, E, alpha, beta), found {rows.shape[1]}")
    return tuple(ChinchillaLaw(A=a, B=b, E=e, alpha=al, beta=be) for a, b, e, al, be in rows
                 if min(a, b, e, al, be) > 0)


def law_to_dict(law) -> dict:
    out = {"name": law.name, "kind": law.kind, "accounting": law.accounting, "params": law.params()}
    if isinstance(law, DataConstrainedLaw):
        out["base"] = asdict(law.base)
    return out
