"""verify.freshness: fingerprints of committed results, and the check that refuses stale ones."""

from __future__ import annotations

import doctest
import json

import pytest

from verify import freshness
from verify.freshness import StaleResultsError

SOURCE = '''"""Module docstring."""
import math


def f(x):
    """What f does."""
    # a comment
    return math.sqrt(x) + 1
'''


def test_code_digest_ignores_comments_docstrings_and_layout_but_not_code():
    base = freshness.source_digest(SOURCE)
    reworded = SOURCE.replace("What f does.", "Something else.").replace("# a comment", "")
    relaid = SOURCE.replace("math.sqrt(x) + 1", "math.sqrt( x )+1")
    assert freshness.source_digest(reworded) == base
    assert freshness.source_digest(relaid) == base
    assert freshness.source_digest(SOURCE.replace("+ 1", "+ 2")) != base
    assert freshness.source_digest(SOURCE.replace("sqrt", "log")) != base


def test_fingerprint_parts_and_their_differences(tmp_path):
    w = tmp_path / "w.bin"
    w.write_bytes(b"weights")
    fp = freshness.fingerprint({"steps": 10, "seeds": (0, 1)}, ["verify.freshness"], {"w": w})
    assert fp["config"] == {"steps": 10, "seeds": [0, 1]}        # tuples stored as lists
    assert set(fp["code"]) == {"verify.freshness"} and set(fp["files"]) == {"w"}
    again = freshness.fingerprint({"seeds": [0, 1], "steps": 10}, ["verify.freshness"], {"w": w})
    assert again["sha256"] == fp["sha256"]                        # key order does not matter
    w.write_bytes(b"other weights")
    moved = freshness.fingerprint({"steps": 10, "seeds": (0, 1)}, ["verify.freshness"], {"w": w})
    assert moved["sha256"] != fp["sha256"]
    assert freshness.differences(fp, moved) == ["it was computed from other files (w)"]
    code = freshness.fingerprint({"steps": 10, "seeds": (0, 1)}, ["verify.atomic"], {"w": w})
    assert "the code that computes it changed since (verify.atomic, verify.freshness)" in \
        freshness.differences(moved, code)


def test_check_names_the_file_what_changed_and_the_command():
    old = freshness.fingerprint({"data": {"a": {"steps": 1000}}}, ["verify.freshness"])
    new = freshness.fingerprint({"data": {"a": {"steps": 2000}}}, ["verify.freshness"])
    result = freshness.stamp({"runs": [1]}, old)
    freshness.check(result, old, path="r.json", regenerate="crelu table")
    with pytest.raises(StaleResultsError, match=r"r\.json is stale: its configuration differs "
                                                r"\(data\.a\.steps: stored 1000, now 2000\); "
                                                r"regenerate it with `crelu table`"):
        freshness.check(result, new, path="r.json", regenerate="crelu table")
    with pytest.raises(StaleResultsError, match="has no 'freshness' fingerprint.*`crelu table`"):
        freshness.check({"runs": [1]}, new, path="r.json", regenerate="crelu table")


def test_check_is_tolerant_of_extra_fields_and_a_bare_fingerprint():
    fp = freshness.fingerprint({"a": 1}, ["verify.freshness"])
    result = {"runs": [], "checkpoints": {"1/8": {}}, "freshness": {"sha256": fp["sha256"],
                                                                    "written_by": "another"}}
    freshness.check(result, fp, path="r.json", regenerate="x")   # only sha256 is compared
    result["freshness"]["sha256"] = "0" * 64
    with pytest.raises(StaleResultsError, match="configuration differs"):
        freshness.check(result, fp, path="r.json", regenerate="x")


def test_the_committed_results_are_fresh():
    """Both files the quick profile reads carry the checked-out code's fingerprint."""
    from verify import invariance_exp as ie
    from verify import table_exp as te
    from verify.claims.invariance import expected_fingerprint

    inv = ie.read_results()
    freshness.check(inv, expected_fingerprint(inv), path=ie.RESULTS_FILE,
                    regenerate=ie.REGENERATE)
    table = te.read_results()
    if freshness.FIELD not in table:
        pytest.xfail("verify/results/table.json predates fingerprints: regenerate it with "
                     f"`{te.REGENERATE}`")
    freshness.check(table, freshness.table_expected(table), path=te.RESULTS_FILE,
                    regenerate=te.REGENERATE)


def test_the_writers_stamp_their_results(tmp_path, monkeypatch):
    """crelu table writes the fingerprint the claims expect (a 1-step, 1-variant run)."""
    from verify import table_exp as te

    monkeypatch.setitem(te.TABLE_CONFIGS, "fashion-mnist", {
        **te.TABLE_CONFIGS["fashion-mnist"], "n_train": 256, "n_test": 128})
    out = tmp_path / "t.json"
    try:
        result = te.run_table(data=("fashion-mnist",), seeds=(0,), variants=("relu",), steps=1,
                              progress=False, out=out, say=lambda _m: None, workers=1)
    except Exception as exc:   # noqa: BLE001 - no data here: nothing to stamp
        pytest.skip(f"the table's data are not available: {exc}")
    saved = json.loads(out.read_text())
    assert saved[freshness.FIELD]["sha256"] == result[freshness.FIELD]["sha256"]
    assert saved[freshness.FIELD]["config"]["data"]["fashion-mnist"]["steps"] == 1
    # a smoke run with steps=1 is not the configured table: the claims call it stale
    configured = te.TABLE_CONFIGS["fashion-mnist"]["config"].steps
    with pytest.raises(StaleResultsError, match=f"steps: stored 1, now {configured}"):
        freshness.check(saved, freshness.table_expected(saved), path=out, regenerate="x")


def test_examples_run():
    failed, attempted = doctest.testmod(freshness, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
