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
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


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

    def __post_init__(self) -> None:
        for k in ("E", "A", "B", "alpha", "beta"):
            _pos(k, getattr(self, k))

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
    samples_file: str | None = None  # bootstrap refits shipped in scaling/data (A, B, E, alpha, beta)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.law.name, "kind": self.law.kind, "params": self.law.params(),
                "citation": self.citation, "notes": self.notes, "warning": self.warning,
                "bootstrap": bool(self.samples_file), "default": self.law.name == DEFAULT_LAW}


DEFAULT_LAW = "epoch-2024"
_CHIN = ChinchillaLaw(E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
                      alpha=0.33917084, beta=0.2849083, name="chinchilla-2022")
_HOFFMANN_WARNING = (
    "Hoffmann et al.'s approach-3 fit, which Besiroglu et al. 2024 showed is flawed: it gives ~2x the "
    "tokens per parameter (45-59) of approaches 1 and 2, Epoch's refit and Chinchilla's own 70B/1.4T "
    "(~20). The default law, epoch-2024, is the refit")

PUBLISHED: dict[str, Published] = {
    "epoch-2024": Published(
        ChinchillaLaw(E=1.8169, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="epoch-2024"),
        "Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt' (Huber-likelihood fit of "
        "Hoffmann et al.'s data)", "the default: agrees with approaches 1 and 2 (~20 tokens per parameter); "
        "CIs from 1,000 bootstrap refits shipped with Taomi", samples_file="epoch_2024_bootstrap.csv"),
    "chinchilla-2022": Published(
        _CHIN, "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', eq. 10 (unrounded "
        "a=6.0073404, b=6.0179186, e=0.5267228 as released with the paper's fit)", warning=_HOFFMANN_WARNING),
    "chinchilla-2022-rounded": Published(
        ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="chinchilla-2022-rounded"),
        "Hoffmann et al. 2022, eq. 10 as printed (rounded)", warning=_HOFFMANN_WARNING),
    "kaplan-2020": Published(
        KaplanLaw(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103, name="kaplan-2020"),
        "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', eq. 1.5 and table 2 (loss); sec. 6.1 "
        "(allocation)",
        "N counts non-embedding parameters; loss in nats/token on WebText2",
        warning="Kaplan's frontier puts almost all extra compute into parameters (N ~ C^0.73): far fewer "
                "tokens per parameter than the Chinchilla-form laws, the allocation Hoffmann et al. 2022 revised"),
    "muennighoff-2023": Published(
        DataConstrainedLaw(base=_CHIN, R_D_star=15.4, R_N_star=5.3, name="muennighoff-2023"),
        "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', eq. 5 (R_D* ~ 15.4, R_N* ~ 5.3)",
        "decay constants from the paper on the Chinchilla-2022 base law",
        warning="its base is chinchilla-2022, ~2x the tokens per parameter that approaches 1 and 2 and "
                "Epoch's refit give; `--unique-tokens` with the default law applies the same decay to epoch-2024"),
}


def get_law(name: str):
    """A published law by name; an unknown name is an error listing the known ones."""
    try:
        return PUBLISHED[name].law
    except KeyError:
        raise KeyError(f"unknown law '{name}'; known: {', '.join(sorted(PUBLISHED))}") from None


@lru_cache(maxsize=8)
def published_samples(name: str) -> tuple[ChinchillaLaw, ...] | None:
    """The shipped bootstrap refits of a published law, or None when it ships none."""
    import numpy as np

    pub = PUBLISHED.get(name)
    if pub is None or not pub.samples_file:
        return None
    rows = np.loadtxt(Path(__file__).with_name("data") / pub.samples_file, delimiter=",", skiprows=1, ndmin=2)
    return tuple(ChinchillaLaw(A=a, B=b, E=e, alpha=al, beta=be) for a, b, e, al, be in rows)


def law_to_dict(law) -> dict:
    out = {"name": law.name, "kind": law.kind, "params": law.params()}
    if isinstance(law, DataConstrainedLaw):
        out["base"] = asdict(law.base)
    return out
