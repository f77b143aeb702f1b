"""Laws as data (issue 26): law files on the command line, their errors in one line naming file
and key, and plans that know their evidence (the fitted range, the tokens-per-parameter band)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.plan_task import answer
from scaling.laws import LAWS_DIR, PUBLISHED, KaplanLaw, read_law_file
from scaling.planning import PlanRequest
from taomi.cli import app

runner = CliRunner()


def test_every_shipped_law_is_a_file_and_loads_back_identical():
    files = sorted(LAWS_DIR.glob("*.toml"))
    assert {f.stem for f in files} == set(PUBLISHED) >= {"muennighoff-2023", "llama3-2024", "deepseek-2024"}
    for f in files:
        pub = read_law_file(f)
        assert pub.law == PUBLISHED[f.stem].law and pub.citation


def test_a_users_law_file_plans_like_the_shipped_law(tmp_path):
    folder = tmp_path / "laws"
    folder.mkdir()
    shutil.copy(LAWS_DIR.parent / "epoch_2024_bootstrap.csv", folder / "boot.csv")
    text = (LAWS_DIR / "epoch-2024.toml").read_text().replace('"epoch-2024"', '"ours"').replace(
        "../epoch_2024_bootstrap.csv", "boot.csv")
    (folder / "ours.toml").write_text(text)
    mine = answer(PlanRequest(flops=1e23, law_file=str(folder / "ours.toml")))
    ref = answer(PlanRequest(flops=1e23))
    for k in ("params", "tokens", "loss"):
        assert mine[k] == pytest.approx(ref[k])
    assert mine["ci"]["params"] == pytest.approx(ref["ci"]["params"])  # the samples travel with the file
    r = runner.invoke(app, ["plan", "--flops", "1e23", "--law-file", str(folder / "ours.toml"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["law_info"]["law_file"].endswith("ours.toml")
    r = runner.invoke(app, ["laws", "--check", str(folder / "ours.toml")])
    assert r.exit_code == 0 and "ours" in r.stdout


@pytest.mark.parametrize("body,expected", [
    ('name = "x"\nkind = "chinchilla"\nsource = "s"\n[params]\nE = 1\nA = 1\nB = 1\nalpha = 0.3\n', "lacks beta"),
    ('name = "x"\nkind = "chinchilla"\nsource = "s"\n[params]\nE = 1\nA = 1\nB = 1\nalpha = 0.3\nbeta = 0.3\nR = 2\n',
     "[params] has R"),
    ('name = "x"\nkind = "quadratic"\nsource = "s"\n[params]\n', "kind must be one of"),
    ('name = "x"\nkind = "allocation"\nsource = "s"\n[params]\ntokens_coef = 0.29\n', "go together"),
    (('name = "x"\nkind = "allocation"\naccounting = "flops"\nsource = "s"\n[params]\ntokens_coef = 0.29\n'
     'tokens_exp = 0.53\n'), "accounting must be one of"),
    ('name = "x"\nkind = "chinchilla"\nsource = "s"\ncolour = 1\n[params]\n', "unknown key(s) colour"),
    ('name = "x"\nkind = "chinchilla"\n[params]\nE = 1\nA = 1\nB = 1\nalpha = 0.3\nbeta = 0.3\n', "source must say"),
    (('name = "x"\nkind = "chinchilla"\nsource = "s"\n[params]\nE = 1\nA = 1\nB = 1\nalpha = 0.3\nbeta = 0.3\n'
     '[fitted]\nflops = [1e21, 1e18]\n'), "[fitted] flops"),
    (('name = "x"\nkind = "chinchilla"\nsource = "s"\nsamples = "none.csv"\n[params]\nE = 1\nA = 1\nB = 1\n'
     'alpha = 0.3\nbeta = 0.3\n'), "samples file none.csv not found"),
    ("name = [", "not valid TOML"),
    # the whole value, closing quote included (one-line errors once stripped quotes off every message)
    ('name = "x"\nkind = "chinchilla"\nsource = "s"\n[params]\nE = 1\nA = 1\nB = 1\nalpha = "0.3"\nbeta = 0.3\n',
     "alpha must be a number, got '0.3'"),
])
def test_a_bad_law_file_is_one_line_naming_file_and_key(tmp_path, body, expected):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    r = runner.invoke(app, ["plan", "--flops", "1e23", "--law-file", str(f)])
    assert r.exit_code == 2 and expected in r.stderr and str(f) in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = runner.invoke(app, ["plan", "--flops", "1e23", "--law-file", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2 and "no such law file" in r.stderr


def test_law_and_law_file_and_fit_are_exclusive():
    r = runner.invoke(app, ["plan", "--flops", "1e23", "--law", "epoch-2024", "--law-file", "x.toml"])
    assert r.exit_code == 2 and "one of a law, a law file or a fit" in r.stderr


def test_plans_past_a_published_laws_range_warn_and_inside_do_not():
    inside = answer(PlanRequest(flops=1e21))
    assert inside["warnings"] == []
    far = answer(PlanRequest(flops=1e26))
    assert any("extrapolation" in w and "compute" in w for w in far["warnings"])
    kap = answer(PlanRequest(flops=1e24, law="kaplan-2020"))
    assert any("tokens per parameter is below" in w for w in kap["warnings"])


@pytest.fixture(scope="module")
def kaplan_fit(tmp_path_factory):
    """The issue's reproduction: a Chinchilla-form fit to isoFLOP sweeps up to 3e19 FLOPs whose
    losses come from Kaplan's formula (so the form is wrong)."""
    tmp = tmp_path_factory.mktemp("kfit")
    law = KaplanLaw(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    rows = []
    for c in np.geomspace(1e17, 3e19, 5):
        for n in np.geomspace(1e7, 1e9, 7):
            d = c / (6 * n)
            rows.append({"N": n, "D": d, "loss": float(law.predict_loss(n, d))})
    csv = tmp / "kaplan_points.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    db = str(tmp / "t.duckdb")
    r = runner.invoke(app, ["--db", db, "fit", str(csv), "--name", "kfit", "--bootstrap", "30"])
    assert r.exit_code == 0, r.stderr
    return db


def test_a_plan_from_a_wrong_form_fit_says_what_its_evidence_does_not_support(kaplan_fit):
    r = runner.invoke(app, ["--db", kaplan_fit, "plan", "--fit", "kfit", "--flops", "1e26", "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    text = " ".join(out["warnings"])
    assert out["tokens_per_param"] < 2 and "tokens per parameter is below" in text
    assert "extrapolation" in text and "compute" in text  # 1e26 is ~3e6x the largest sweep
    r = runner.invoke(app, ["--db", kaplan_fit, "plan", "--fit", "kfit", "--flops", "1e26"])
    assert r.exit_code == 0 and "warning: extrapolation" in r.stdout


def test_data_constrained_fit_can_pin_the_decay_constants(tmp_path):
    law = PUBLISHED["muennighoff-2023"].law
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(3e7, 3e9, 6), 8)
    D = np.tile(np.geomspace(1e9, 3e11, 8), 6)
    U = np.where(rng.random(len(N)) < 0.5, D * 2, D / rng.choice([2, 4, 8, 16], len(N)))
    csv = tmp_path / "dc.csv"
    pd.DataFrame({"N": N, "D": D, "loss": law.predict_loss(N, D, U), "U": U}).to_csv(csv, index=False)
    db = str(tmp_path / "t.duckdb")
    r = runner.invoke(app, ["--db", db, "fit", str(csv), "--law", "data-constrained", "--fix", "R_D_star=15.387756",
                            "--fix", "R_N_star=5.309743", "--json"])
    assert r.exit_code == 0, r.stderr
    p = json.loads(r.stdout)["params"]
    assert (p["R_D_star"], p["R_N_star"]) == (15.387756, 5.309743)
    assert p["alpha"] == pytest.approx(0.3526596, rel=0.02)
    r = runner.invoke(app, ["--db", db, "fit", str(csv), "--law", "data-constrained", "--fix", "alpha=0.3"])
    assert r.exit_code == 2 and "R_D_star and R_N_star" in r.stderr
