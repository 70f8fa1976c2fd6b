"""verify/mutation.py's bookkeeping: score, Wilson interval, sampling, table, JSON.

None of these tests runs mutmut. The Wilson interval is checked against an independent
oracle: the interval is the set of p whose score test ``|p_hat - p| <= z sqrt(p(1-p)/n)``
accepts, i.e. the roots of a quadratic, found here by bisection on the test itself.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from verify import mutation as mut


def _score_test_accepts(k: int, n: int, p: float, z: float = mut.Z95) -> bool:
    return abs(k / n - p) <= z * math.sqrt(p * (1 - p) / n)


def _bisect_edge(k: int, n: int, inside: float, outside: float) -> float:
    """The boundary between an accepted ``inside`` and a rejected ``outside`` p."""
    for _ in range(200):
        mid = (inside + outside) / 2
        if _score_test_accepts(k, n, mid):
            inside = mid
        else:
            outside = mid
    return (inside + outside) / 2


@pytest.mark.parametrize("k,n", [(1, 10), (5, 10), (8, 10), (9, 15), (14, 15), (37, 120)])
def test_wilson_interval_matches_the_inverted_score_test(k, n):
    low, high = mut.wilson_interval(k, n)
    p_hat = k / n
    assert low == pytest.approx(_bisect_edge(k, n, p_hat, 0.0), abs=1e-12)
    assert high == pytest.approx(_bisect_edge(k, n, p_hat, 1.0), abs=1e-12)
    assert 0 < low < p_hat < high < 1


def test_wilson_interval_at_the_ends():
    # all killed: upper end 1, lower end n / (n + z^2) (the score test's boundary)
    low, high = mut.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(10 / (10 + mut.Z95**2), rel=1e-14)
    assert low == pytest.approx(0.7225, abs=1e-4)
    low, high = mut.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(mut.Z95**2 / (10 + mut.Z95**2), rel=1e-14)
    assert mut.wilson_interval(0, 0) is None
    # a larger sample gives a narrower interval around the same proportion
    a, b = mut.wilson_interval(9, 10), mut.wilson_interval(90, 100)
    assert b[1] - b[0] < a[1] - a[0]


@pytest.mark.parametrize("args", [(11, 10), (-1, 10), (1.5, 10), (True, 3)])
def test_wilson_interval_rejects_bad_counts(args):
    with pytest.raises(ValueError):
        mut.wilson_interval(*args)


def test_score():
    assert mut.mutation_score(9, 1) == 0.9
    assert mut.mutation_score(0, 4) == 0.0
    assert mut.mutation_score(0, 0) is None
    with pytest.raises(ValueError, match="survived"):
        mut.mutation_score(1, -1)


def test_sampling_is_deterministic_and_independent_of_order():
    names = [f"theory.frames.x_f__mutmut_{i}" for i in range(1, 200)]
    a = mut.sample_mutants(names, 15, seed=3, module="theory/frames.py")
    b = mut.sample_mutants(list(reversed(names)), 15, seed=3, module="theory/frames.py")
    assert a == b and len(a) == 15 and len(set(a)) == 15 and set(a) <= set(names)
    # another seed or another module draws another sample
    assert mut.sample_mutants(names, 15, seed=4, module="theory/frames.py") != a
    assert mut.sample_mutants(names, 15, seed=3, module="theory/conv.py") != a
    # all of them when no sample size, or one at least as large as the population
    assert mut.sample_mutants(names, None, seed=0, module="m") == sorted(names)
    assert mut.sample_mutants(names, 500, seed=0, module="m") == sorted(names)
    with pytest.raises(ValueError, match="duplicate"):
        mut.sample_mutants(["a", "a"], 1, seed=0, module="m")
    with pytest.raises(ValueError, match=">= 1"):
        mut.sample_mutants(names, 0, seed=0, module="m")


def test_sampling_is_stable_across_processes():
    # str seeds are hashed with sha512 by random.Random, never with the salted hash()
    code = ("from verify import mutation as m; "
            "print(m.sample_mutants([str(i) for i in range(100)], 5, seed=7, module='x'))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": s}).stdout for s in ("1", "2")}
    assert len(runs) == 1
    assert runs.pop().strip() == str(mut.sample_mutants([str(i) for i in range(100)], 5,
                                                        seed=7, module="x"))


def test_classify_follows_mutmut_exit_codes():
    assert [mut.classify(c) for c in (0, 1, 3, 33, 36, -24, None, 99)] == [
        "survived", "killed", "killed", "no tests", "timeout", "timeout", "not checked",
        "suspicious"]


def test_summarise_counts_no_tests_as_survived():
    statuses = {"a": "killed", "b": "killed", "c": "survived", "d": "no tests", "e": "timeout",
                "f": "segfault"}
    s = mut.summarise(40, statuses)
    assert (s["generated"], s["sampled"], s["killed"], s["survived"], s["no_tests"],
            s["timeout"]) == (40, 6, 2, 2, 1, 1)
    assert s["other"] == {"segfault": 1}
    assert s["score"] == 0.5 and s["wilson95"] == list(mut.wilson_interval(2, 4))
    assert s["survivors"] == ["c", "d"]
    with pytest.raises(ValueError, match="only 3 generated"):
        mut.summarise(3, statuses)


def test_equivalent_survivors_leave_the_non_equivalent_score_only():
    statuses = {"a": "killed", "b": "killed", "m.x_f__mutmut_3": "survived", "d": "no tests",
                "e": "killed"}
    diffs = {"m.x_f__mutmut_3": "-    x + 1\n+    x - 1", "d": "-a\n+b"}
    fp = mut.diff_fingerprint(diffs["m.x_f__mutmut_3"])
    s = mut.summarise(40, statuses, {"m.x_f__mutmut_3": fp, "e": fp, "zz": fp}, diffs)
    assert s["equivalent"] == ["m.x_f__mutmut_3"] and s["score"] == 0.6   # e was killed
    assert s["score_non_equivalent"] == 0.75 and s["equivalent_stale"] == []
    assert s["wilson95_non_equivalent"] == list(mut.wilson_interval(3, 4))


def test_a_verdict_follows_its_mutation_not_its_number():
    """Planted staleness: after an edit renumbers a function's mutants, the verdict's name
    means another mutation; it must not count for it, and must count for its own mutation
    under the new number."""
    judged = "--- m\n+++ m\n@@ -1 +1 @@\n-    return x + 1\n+    return x - 1"
    other = "--- m\n+++ m\n@@ -1 +1 @@\n-    raise ValueError('bad')\n+    raise ValueError(None)"
    verdicts = {"m.x_f__mutmut_3": mut.diff_fingerprint(judged)}
    # the name now carries another (killable, surviving) mutation
    s = mut.summarise(10, {"m.x_f__mutmut_3": "survived", "k": "killed"}, verdicts,
                      {"m.x_f__mutmut_3": other})
    assert s["equivalent"] == [] and s["equivalent_stale"] == ["m.x_f__mutmut_3"]
    assert s["score_non_equivalent"] == s["score"] == 0.5
    # the judged mutation survives as mutant 9 of the same function: still equivalent
    s = mut.summarise(10, {"m.x_f__mutmut_9": "survived", "k": "killed"}, verdicts,
                      {"m.x_f__mutmut_9": judged})
    assert s["equivalent"] == ["m.x_f__mutmut_9"] and s["score_non_equivalent"] == 1.0
    # the same change in another function is not covered
    s = mut.summarise(10, {"m.x_g__mutmut_3": "survived"}, verdicts, {"m.x_g__mutmut_3": judged})
    assert s["equivalent"] == []
    # no recorded diff: not covered
    assert mut.summarise(10, {"m.x_f__mutmut_3": "survived"}, verdicts)["equivalent"] == []


def test_equivalent_verdicts_in_pyproject_name_sampled_mutants_with_reasons():
    equivalent = mut.load_equivalent()
    assert equivalent and all(v["reason"].strip() for v in equivalent.values())
    assert all(len(v["diff"]) == 16 for v in equivalent.values())
    modules = {".".join(m[:-3].split("/")) for m in mut.load_modules()}
    assert all(name.rsplit(".", 1)[0] in modules for name in equivalent), equivalent


def test_load_equivalent_refuses_a_verdict_without_its_diff(tmp_path):
    p = tmp_path / "pyproject.toml"
    p.write_text('[tool.crelu-mutation.equivalent]\n"theory.a.x_f__mutmut_1" = "a reason"\n')
    with pytest.raises(ValueError, match="reason = .*diff = "):
        mut.load_equivalent(p)
    p.write_text('[tool.crelu-mutation.equivalent]\n'
                 '"theory.a.x_f__mutmut_1" = {reason = "r", diff = "123"}\n')
    with pytest.raises(ValueError, match="16-digit diff_fingerprint"):
        mut.load_equivalent(p)


@pytest.mark.slow  # mutmut regenerates every module with a verdict: minutes
@pytest.mark.skipif(importlib.util.find_spec("mutmut") is None, reason="mutmut not installed")
def test_every_equivalence_verdict_matches_the_current_source():
    """Each verdict's mutation still exists under its name (an edit that renumbers a
    function's mutants must re-key the verdict: --check-equivalent names the new number)."""
    report = mut.check_equivalent(mut.load_equivalent())
    bad = {n: (r["state"], r["now"]) for n, r in report.items() if r["state"] != "ok"}
    assert not bad, bad


def test_table_and_atomic_json(tmp_path):
    s = mut.summarise(10, {"a": "killed"})
    table = mut.format_table({"theory/x.py": s})
    assert ("| theory/x.py | 10 | 1 | 1 | 0 | 0 | 0 | 1.00 | [0.21, 1.00] | 0 | 1.00 "
            "| [0.21, 1.00] |") in table
    out = tmp_path / "sub" / "mutation.json"
    mut.write_results(out, {"modules": {"theory/x.py": s}})
    assert json.loads(out.read_text())["modules"]["theory/x.py"]["killed"] == 1
    assert [p.name for p in out.parent.iterdir()] == ["mutation.json"]  # no temporary left


def test_module_pyproject_specialises_only_the_mutmut_table():
    import tomllib

    text = mut.ROOT.joinpath("pyproject.toml").read_text()
    out = tomllib.loads(mut.module_pyproject(text, "theory/frames.py", ["tests/test_frames.py"]))
    orig = tomllib.loads(text)
    assert out["tool"]["mutmut"]["only_mutate"] == ["theory/frames.py"]
    assert out["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests/test_frames.py"]
    assert out["tool"]["mutmut"]["source_paths"] == orig["tool"]["mutmut"]["source_paths"]
    assert out["tool"]["pytest"] == orig["tool"]["pytest"] and out["project"] == orig["project"]


def test_every_configured_module_and_test_file_exists():
    modules = mut.load_modules()
    assert {"theory/conv.py", "theory/frames.py", "theory/rademacher.py"} <= set(modules)
    assert all(tests for tests in modules.values())


def test_module_does_not_import_mutmut_or_torch_at_import_time():
    code = "import sys, verify.mutation; print('mutmut' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
