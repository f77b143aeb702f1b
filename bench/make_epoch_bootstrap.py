"""Write scaling/data/epoch_2024_bootstrap.csv: the bootstrap of the `epoch-2024` law that ships
with Taomi, so plans under the default law carry CIs without refitting.

Epoch AI's likelihood fit (Besiroglu et al. 2024) of their 240 points (the 5 highest-loss of 245
dropped), refitted on 1,000 resamples with replacement, seed 0. The full-data fit reproduces
the published E 1.8169, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658 (tests/scaling/test_fit.py).

    python bench/make_epoch_bootstrap.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.data import CHINCHILLA_POINTS
from scaling.fit import ChinchillaFitter, FitConfig
from scaling.observations import read_observations

OUT = Path(CHINCHILLA_POINTS).with_name("epoch_2024_bootstrap.csv")


def main() -> None:
    obs = read_observations(CHINCHILLA_POINTS)
    f = ChinchillaFitter(FitConfig(drop_outliers=5, method="likelihood")).fit(obs).bootstrap(obs, n=1000, seed=0)
    s = f.bootstrap_samples_[:, :5]  # A, B, E, alpha, beta
    header = "A,B,E,alpha,beta"
    np.savetxt(OUT, s, delimiter=",", header=header, comments="", fmt="%.10g")
    print(f"{OUT}: {len(s)} samples, {f.degenerate_} degenerate resamples skipped; sha256 "
          f"{hashlib.sha256(OUT.read_bytes()).hexdigest()}")
    print("95% CIs:", {k: tuple(round(x, 4) for x in v) for k, v in f.ci_.items()})


if __name__ == "__main__":
    main()
