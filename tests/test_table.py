"""Tests of the classification table: statistics, decision rules, controls, a smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from verify import table_exp as te
from verify.claims.table import matches_status, sign_status, welch_interval


def test_welch_interval_agrees_with_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.2, 0.01, 3), rng.normal(0.25, 0.03, 4)
    d, (lo, hi) = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        welch_interval(a[:1], b)


def test_sign_rule_and_its_self_control():
    low, high = np.array([0.10, 0.11, 0.12]), np.array([0.20, 0.21, 0.22])
    assert sign_status(low, high, "e")[0] == "pass"
    assert sign_status(high, low, "e")[0] == "fail"
    # the control: a variant against itself (seeds reversed) can never pass
    assert sign_status(high, high[::-1].copy(), "e")[0] == "inconclusive"


def test_half_rule_and_its_untrained_control():
    base = np.array([0.20, 0.21, 0.22])
    assert matches_status(np.array([0.205, 0.215, 0.22]), base, 100, 200)[0] == "pass"
    assert matches_status(np.array([0.205, 0.215, 0.22]), base, 300, 200)[0] == "fail"
    # chance-level (untrained) errors are far beyond one std of the baseline
    assert matches_status(np.array([0.90, 0.89, 0.91]), base, 100, 200)[0] == "fail"
    # slightly worse but noisy: inconclusive
    status, m = matches_status(np.array([0.19, 0.25, 0.26]), base, 100, 200)
    assert status == "inconclusive" and m["excess_over_base_plus_std"] > 0


def test_read_results_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="crelu table"):
        te.read_results(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a table results file"):
        te.read_results(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="no runs"):
        te.read_results(empty)
    with pytest.raises(ValueError, match="unknown variant"):
        te.run_table(variants=("relu", "tanh"))


def test_committed_table_claims_run_and_their_controls_do_not_pass(tmp_path):
    from verify.claims import Context
    from verify.claims.table import CLAIMS

    if not te.RESULTS_FILE.is_file():
        pytest.skip("verify/results/table.json not generated yet")
    ctx = Context(profile="quick", seed=0, out_dir=tmp_path)
    for claim in CLAIMS:
        rec = claim.run(ctx)
        assert "error" not in rec["measured"], rec["measured"]
        controls = {c["kind"]: c["status"] for c in rec["controls"]}
        assert controls["planted_positive"] == "pass", (claim.id, controls)
        assert controls["planted_null"] != "pass", (claim.id, controls)
    assert (tmp_path / "figures" / "classification-table.png").is_file()


def test_smoke_run_writes_a_readable_table(tmp_path, monkeypatch):
    from verify.data.fashion_mnist import fashion_mnist_available

    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST files not installed")
    spec = dict(te.TABLE_CONFIGS["fashion-mnist"], n_train=300, n_test=200)
    monkeypatch.setitem(te.TABLE_CONFIGS, "fashion-mnist", spec)
    out = tmp_path / "table.json"
    result = te.run_table(data=["fashion-mnist"], seeds=(0, 1), variants=("relu", "crelu_half"),
                          threads=1, steps=3, progress=False, out=out, say=lambda _m: None,
                          workers=1)
    again = te.read_results(out)
    assert again["runs"] == json.loads(json.dumps(result["runs"]))
    table = te.summarise(again)["fashion-mnist"]
    assert table["crelu_half"]["parameters"] < table["relu"]["parameters"]
    assert all(0 <= r["test_error"] <= 1 and 0 <= r["train_error"] <= 1 for r in again["runs"])
    assert "CReLU, half filters" in te.markdown_table(again)
    from verify import figures

    assert figures.table_figure(te.summarise(again), tmp_path / "t.png") == str(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0


def _timeless(runs):
    return [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")} for r in runs]


def test_parallel_workers_give_the_records_of_one_process(tmp_path):
    """Two spawned single-threaded workers train exactly what one process trains (the runs
    are seeded and independent), and the file records wall time, CPU time and load."""
    spec = dict(te.TABLE_CONFIGS["photos-grey"], n_train=270, n_test=54)
    spec["config"] = te.dataclasses.replace(spec["config"], batch_size=32, width=4)
    kw = dict(data=["photos-grey"], seeds=(0, 1), variants=("relu", "crelu"), threads=1,
              steps=3, progress=False, say=lambda _m: None)
    import unittest.mock

    with unittest.mock.patch.dict(te.TABLE_CONFIGS, {"photos-grey": spec}):
        one = te.run_table(workers=1, **kw)
        two = te.run_table(workers=2, out=tmp_path / "t.json", **kw)
    assert _timeless(two["runs"]) == _timeless(one["runs"])
    assert [(r["variant"], r["seed"]) for r in two["runs"]] == \
        [("relu", 0), ("relu", 1), ("crelu", 0), ("crelu", 1)]
    # different seeds do train different models (the comparison could fail)
    assert two["runs"][0]["final_train_loss"] != two["runs"][1]["final_train_loss"]
    saved = te.read_results(tmp_path / "t.json")
    assert saved["workers"] == 2 and saved["cpu_seconds"] > 0
    assert len(saved["load_average"]) == 2 + len(saved["runs"])
    with pytest.raises(ValueError, match="workers"):
        te.run_table(workers=0, **kw)


def test_cli_table_runs_on_a_cifar10_folder(tmp_path, capsys):
    """`crelu table --data cifar10 --root PATH` (the way to run the table on real CIFAR-10),
    on a fake 192-image folder in the python format; and its error without --root."""
    from test_data import _cifar_folder
    from verify.cli import main

    (tmp_path / "cifar").mkdir()
    _cifar_folder(tmp_path / "cifar", n=32)
    out = tmp_path / "table.json"
    rc = main(["table", "--data", "cifar10", "--root", str(tmp_path / "cifar"), "--seeds", "0",
               "--steps", "2", "--workers", "1", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    res = te.read_results(out)
    assert res["configs"]["cifar10"]["n_train"] == 160 and {r["data"] for r in res["runs"]} == {"cifar10"}
    assert len(res["runs"]) == len(te.VARIANTS)
    rc = main(["table", "--data", "cifar10", "--out", str(out), "--no-progress"])
    assert rc == 2 and "--root" in capsys.readouterr().err
