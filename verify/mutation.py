"""Mutation score of ``theory/``: mutmut, one module at a time, against that module's own tests.

``python -m verify.mutation`` reproduces the numbers in ``docs/dev/mutation.md``. For every
module in ``[tool.crelu-mutation.modules]`` of ``pyproject.toml`` (module -> its fast test
files) it lists the mutants that mutmut generates, takes all of them or a seeded random sample
(``--sample N --seed S``), runs mutmut on exactly those mutants in a work folder of its own
(``out/mutation/<module>/``, where ``[tool.mutmut]`` is specialised so that only that file is
mutated and only its test files run), reads back mutmut's verdicts and writes
``docs/dev/mutation.json`` atomically. It is not part of CI: a mutant costs seconds to a
minute, a module of several hundred mutants hours.

Notes
-----
The score of a module is :math:`s = k / (k + u)` with :math:`k` mutants killed and :math:`u`
survived, where a mutant that none of the module's test files reaches (mutmut's "no tests")
counts as survived; timeouts and any other verdict are counted apart and left out of both.
A sample of :math:`n = k + u` mutants gives the 95% Wilson score interval

.. math::

    \\frac{\\hat p + \\frac{z^2}{2n} \\pm z \\sqrt{\\frac{\\hat p (1 - \\hat p)}{n}
    + \\frac{z^2}{4n^2}}}{1 + \\frac{z^2}{n}}, \\qquad \\hat p = k/n,\\ z = 1.959964,

which, unlike the normal approximation, stays inside [0, 1] and is not degenerate at
:math:`\\hat p = 1` (a sample of 10 with no survivor gives [0.72, 1], not [1, 1]). The
interval is for the population of the module's mutants under simple random sampling.
Equivalent mutants are judged by a person, one by one, and listed with the reason in
``[tool.crelu-mutation.equivalent]``; the second score, ``score_non_equivalent``, leaves the
sampled ones out of :math:`u`.

The sample is drawn by :func:`sample_mutants` from the sorted mutant names with a
:class:`random.Random` seeded by ``"<seed>:<module>"``, so a module's sample depends only on
its own mutants and the seed, not on which other modules run.

mutmut is imported only inside the functions that need it, so that this module and its
bookkeeping are importable (and tested) without it.

Examples
--------
>>> wilson_interval(10, 10)  # doctest: +ELLIPSIS
(0.72..., 1.0)
>>> mutation_score(9, 1)
0.9
>>> sample_mutants(["a", "b", "c", "d"], 2, seed=0, module="theory/x.py")
['b', 'd']
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("docs/dev/mutation.json")
DEFAULT_WORK = Path("out/mutation")
Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal

# mutmut's exit codes (mutmut/stats.py, status_by_exit_code) grouped the way the score needs
_KILLED = "killed"
_SURVIVED = "survived"
_TIMEOUT = "timeout"
_NO_TESTS = "no tests"



def _toml():
    """The TOML reader: ``tomllib`` (Python >= 3.11) or its backport ``tomli``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the mutation extra installs tomli
        import tomli as tomllib
    return tomllib

def mutation_score(killed: int, survived: int) -> float | None:
    """The fraction ``killed / (killed + survived)``; ``None`` when both are 0.

    Examples
    --------
    >>> mutation_score(3, 1)
    0.75
    >>> mutation_score(0, 0) is None
    True
    """
    _check_count("killed", killed)
    _check_count("survived", survived)
    n = killed + survived
    return None if n == 0 else killed / n


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (95% for the default ``z``).

    Parameters
    ----------
    successes, trials : int
        Mutants killed and mutants killed or survived; ``0 <= successes <= trials``.
    z : float
        Standard-normal quantile; 1.959964 for 95%.

    Returns
    -------
    (low, high) or None
        ``None`` when ``trials == 0`` (no information).

    Notes
    -----
    See the module Notes for the formula. At ``successes == trials`` the upper end is exactly
    1 and the lower end is :math:`n / (n + z^2)`.

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(low, 4), round(high, 4)
    (0.4902, 0.9433)
    """
    _check_count("successes", successes)
    _check_count("trials", trials)
    if successes > trials:
        raise ValueError(f"successes ({successes}) must not exceed trials ({trials})")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive finite number, got {z!r}")
    if trials == 0:
        return None
    n = trials
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def sample_mutants(names: Sequence[str], n: int | None, *, seed: int, module: str) -> list[str]:
    """All of ``names`` (``n`` None or >= len) or a seeded random sample of ``n``, sorted.

    The draw is from ``sorted(set(names))`` with ``random.Random(f"{seed}:{module}")``, so it
    does not depend on the order mutmut lists the mutants in nor on the other modules.

    Examples
    --------
    >>> sample_mutants(["b", "a"], None, seed=1, module="m")
    ['a', 'b']
    """
    pool = sorted(set(names))
    if len(pool) != len(names):
        raise ValueError(f"{module}: duplicate mutant names")
    if n is None or n >= len(pool):
        return pool
    if n < 1:
        raise ValueError(f"sample size must be >= 1, got {n}")
    return sorted(random.Random(f"{seed}:{module}").sample(pool, n))


def classify(exit_code: int | None) -> str:
    """mutmut's verdict for a mutant's exit code, as in ``mutmut.stats.status_by_exit_code``.

    Examples
    --------
    >>> classify(1), classify(0), classify(36), classify(None)
    ('killed', 'survived', 'timeout', 'not checked')
    """
    table = {1: _KILLED, 3: _KILLED, 0: _SURVIVED, 5: _NO_TESTS, 33: _NO_TESTS, 34: "skipped",
             2: "interrupted", None: "not checked", 35: "suspicious", 36: _TIMEOUT,
             -24: _TIMEOUT, 24: _TIMEOUT, 152: _TIMEOUT, 255: _TIMEOUT, 37: "type check",
             -11: "segfault", -9: "segfault"}
    return table.get(exit_code, "suspicious")


def summarise(generated: int, statuses: Mapping[str, str],
              equivalent: Mapping[str, str] | None = None,
              diffs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Counts, score and 95% Wilson interval of one module's sampled mutants.

    Parameters
    ----------
    generated : int
        How many mutants mutmut generates for the module.
    statuses : mapping
        Sampled mutant name -> verdict (:func:`classify`).
    equivalent : mapping, optional
        Mutant name -> the `diff_fingerprint` of the mutation judged equivalent (by a
        person, with the reason in pyproject.toml). A survivor among them is left out of
        ``score_non_equivalent`` if its diff in ``diffs`` has the fingerprint of a verdict on
        the same function (under any mutant number: an edit of the function renumbers its
        mutants). A survivor named in a verdict whose diff differs (the name now means
        another mutation) is listed in ``equivalent_stale`` and counts as a survivor.
    diffs : mapping, optional
        Mutant name -> its diff in this run (recorded for every mutant not killed).

    Examples
    --------
    >>> s = summarise(100, {"a": "killed", "b": "killed", "c": "survived", "d": "timeout",
    ...                     "e": "no tests"})
    >>> s["sampled"], s["killed"], s["survived"], s["no_tests"], s["timeout"], s["score"]
    (5, 2, 2, 1, 1, 0.5)
    >>> d = {"c": "-    x + 1\\n+    x - 1"}
    >>> summarise(100, {"a": "killed", "c": "survived"}, {"c": diff_fingerprint(d["c"])},
    ...           d)["score_non_equivalent"]
    1.0
    >>> summarise(100, {"a": "killed", "c": "survived"}, {"c": "0" * 16}, d)["equivalent_stale"]
    ['c']
    """
    _check_count("generated", generated)
    if len(statuses) > generated:
        raise ValueError(f"sampled {len(statuses)} mutants out of only {generated} generated")
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    # "no tests": none of the module's test files runs the mutated function, so the mutant
    # survives them; it counts as survived (and is reported apart as well)
    no_tests = counts.pop(_NO_TESTS, 0)
    killed, survived = counts.pop(_KILLED, 0), counts.pop(_SURVIVED, 0) + no_tests
    timeout = counts.pop(_TIMEOUT, 0)
    interval = wilson_interval(killed, killed + survived)
    survivors = sorted(k for k, v in statuses.items() if v in (_SURVIVED, _NO_TESTS))
    equivalent, diffs = equivalent or {}, diffs or {}
    # a verdict is about a mutation of one function, whatever number mutmut gives it
    judged_mutations = {(function_of(n), fp) for n, fp in equivalent.items()}
    equiv = sorted(n for n in survivors if n in diffs
                   and (function_of(n), diff_fingerprint(diffs[n])) in judged_mutations)
    stale = sorted(n for n in survivors if n in equivalent and n not in equiv)
    interval_ne = wilson_interval(killed, killed + survived - len(equiv))
    return {
        "generated": generated,
        "sampled": len(statuses),
        "killed": killed,
        "survived": survived,
        "no_tests": no_tests,
        "timeout": timeout,
        "other": dict(sorted(counts.items())),
        "score": mutation_score(killed, survived),
        "wilson95": None if interval is None else list(interval),
        "survivors": survivors,
        "equivalent": equiv,
        "equivalent_stale": stale,
        "score_non_equivalent": mutation_score(killed, survived - len(equiv)),
        "wilson95_non_equivalent": None if interval_ne is None else list(interval_ne),
    }


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def load_modules(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, list[str]]:
    """``[tool.crelu-mutation.modules]``: module path -> pytest arguments (its test files)."""
    tomllib = _toml()

    data = tomllib.loads(pyproject.read_text("utf-8"))
    try:
        modules = data["tool"]["crelu-mutation"]["modules"]
    except KeyError:
        raise ValueError(f"{pyproject} has no [tool.crelu-mutation.modules] table") from None
    for module, tests in modules.items():
        if not (ROOT / module).is_file():
            raise ValueError(f"[tool.crelu-mutation.modules]: {module} does not exist")
        for t in tests:
            path = t.split("::")[0]
            if not t.startswith("-") and not (ROOT / path).exists():
                raise ValueError(f"[tool.crelu-mutation.modules] {module}: no test file {path}")
    return modules


def _mutated(module: str) -> tuple[list[str], str]:
    """mutmut's mutants of ``module`` (e.g. ``theory/frames.py``): their names and the mutated
    source, generated in-process (no tests run; seconds to a minute for a large module)."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    cwd = os.getcwd()
    os.chdir(ROOT)  # mutmut reads its [tool.mutmut] from ./pyproject.toml
    try:
        path = Path(module)
        mutated = mutate_file_contents(str(path), path.read_text("utf-8"))
    finally:
        os.chdir(cwd)
    return [get_mutant_name(path, name) for name in mutated.mutant_names], mutated.code


def list_mutants(module: str) -> list[str]:
    """The names of the mutants mutmut generates for ``module`` (e.g. ``theory/frames.py``)."""
    return _mutated(module)[0]


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def module_pyproject(text: str, module: str, tests: Sequence[str]) -> str:
    """``pyproject.toml`` text with ``[tool.mutmut]`` specialised to one module and its tests.

    Examples
    --------
    >>> text = '[a]\\nx = 1\\n[tool.mutmut]\\ny = 2\\nonly_mutate = ["z.py"]\\n[b]\\n'
    >>> out = module_pyproject(text, "m.py", ["t.py"])
    >>> "y = 2" in out, 'only_mutate = ["m.py"]' in out, "z.py" in out, "[b]" in out
    (True, True, False, True)
    """
    tomllib = _toml()

    base = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    stripped = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    lines = ["[tool.mutmut]"]
    for key, value in base.items():
        if key not in ("only_mutate", "pytest_add_cli_args_test_selection"):
            lines.append(f"{key} = {json.dumps(value)}")
    lines.append(f"only_mutate = {_toml_list([module])}")
    lines.append(f"pytest_add_cli_args_test_selection = {_toml_list(list(tests))}")
    return stripped.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def prepare_workdir(module: str, tests: Sequence[str], work: Path) -> Path:
    """A fresh folder with copies of theory/, tests/ and the specialised pyproject.toml."""
    folder = work / Path(module).stem
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in ("theory", "tests"):
        shutil.copytree(ROOT / name, folder / name,
                        ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    (folder / "pyproject.toml").write_text(module_pyproject(text, module, tests), "utf-8")
    return folder


def run_module(module: str, tests: Sequence[str], names: Sequence[str], work: Path,
               timeout: float) -> tuple[dict[str, str], dict[str, str], str]:
    """Run mutmut on ``names`` of ``module``; verdicts, survivors' diffs and mutmut's log."""
    folder = prepare_workdir(module, tests, work)
    mutmut = Path(sys.executable).with_name("mutmut")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    # its own session, so that a timeout or ^C ends mutmut's forked workers too
    proc = subprocess.Popen([str(mutmut), "run", "--max-children", "1", *names], cwd=folder,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    meta = folder / "mutants" / (module + ".meta")
    if not meta.is_file():
        raise RuntimeError(f"mutmut wrote no results for {module} (exit {proc.returncode}):\n"
                           + log[-4000:])
    codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    missing = [n for n in names if n not in codes]
    if missing:
        raise RuntimeError(f"{module}: mutmut has no verdict for {missing[:5]}")
    statuses = {n: classify(codes[n]) for n in names}
    if all(s == "not checked" for s in statuses.values()):
        raise RuntimeError(f"mutmut checked none of the mutants of {module} "
                           f"(exit {proc.returncode}):\n" + log[-4000:])
    diffs = mutant_diffs(folder / "mutants" / module, module,
                         [n for n, s in statuses.items() if s != _KILLED])
    return statuses, diffs, log


def mutant_diffs(mutated: Path, module: str, names: Sequence[str]) -> dict[str, str]:
    """Unified diffs (original -> mutant) of ``names``, from mutmut's mutated copy of the file.

    What ``mutmut show`` prints, but parsing the (large) mutated file once for all names.
    """
    if not names:
        return {}
    return _diffs_from_code(mutated.read_text("utf-8"), module, names)


def _diffs_from_code(code: str, module: str, names: Sequence[str]) -> dict[str, str]:
    import difflib

    import libcst as cst
    from mutmut.mutation.diff_apply import read_mutant_function, read_original_function

    tree = cst.parse_module(code)
    diffs = {}
    for name in names:
        orig, mutant = (cst.Module([f]).code.strip() for f in
                        (read_original_function(tree, name), read_mutant_function(tree, name)))
        diffs[name] = "\n".join(difflib.unified_diff(orig.split("\n"), mutant.split("\n"),
                                                     fromfile=module, tofile=module, lineterm=""))
    return diffs


def current_diffs(module: str, names: Sequence[str],
                  mutated: tuple[list[str], str] | None = None) -> dict[str, str]:
    """The diffs of ``names`` as mutmut would generate them from the current source of
    ``module`` (no tests run); a name mutmut no longer generates maps to ``""``.
    ``mutated``: the module's `_mutated` result, if already generated."""
    every, code = mutated if mutated is not None else _mutated(module)
    present = set(every)
    out = _diffs_from_code(code, module, [n for n in names if n in present])
    return {n: out.get(n, "") for n in names}


def diff_fingerprint(diff: str) -> str:
    """What an equivalence verdict is about: a hash of the mutant's changed lines.

    A verdict is keyed by mutmut's mutant name, which is a number within its function; an
    edit of the function renumbers the mutants, so the same name can come to mean another
    mutation. The verdict therefore also records this fingerprint, and it counts only for a
    mutant whose diff has it (context lines and line numbers are left out, so an edit
    elsewhere in the function keeps the verdict).

    Examples
    --------
    >>> a = "--- m\\n+++ m\\n@@ -1,2 +1,2 @@\\n def f():\\n-    return x + 1\\n+    return x - 1"
    >>> b = "--- m\\n+++ m\\n@@ -4,2 +4,2 @@\\n def f(y):\\n-    return x + 1\\n+    return x - 1"
    >>> diff_fingerprint(a) == diff_fingerprint(b), len(diff_fingerprint(a))
    (True, 16)
    >>> diff_fingerprint(a) == diff_fingerprint(a.replace("x - 1", "x * 1"))
    False
    """
    import hashlib

    changed = [line for line in diff.splitlines()
               if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))]
    return hashlib.sha256("\n".join(changed).encode("utf-8")).hexdigest()[:16]


def function_of(mutant: str) -> str:
    """``theory.fft.xǁCǁf__mutmut_3`` -> ``theory.fft.xǁCǁf`` (the mutated function)."""
    return mutant.rsplit("__mutmut_", 1)[0]


def module_of(mutant: str) -> str:
    """``theory.fft.xǁCǁf__mutmut_3`` -> ``theory/fft.py``."""
    return mutant.split(".x", 1)[0].replace(".", "/") + ".py"


def check_equivalent(equivalent: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Each verdict against the current source: ``{name: {"state", "fingerprint", "diff",
    "now"}}``.

    ``state`` is ``"ok"`` (the mutant still has the recorded diff), ``"renumbered"`` (the
    judged mutation is now mutant ``now`` of the same function: re-key the verdict) or
    ``"stale"`` (the function no longer has that mutation: judge again).
    """
    by_module: dict[str, list[str]] = {}
    for name in equivalent:
        by_module.setdefault(module_of(name), []).append(name)
    report = {}
    for module, names in sorted(by_module.items()):
        mutated = _mutated(module)                  # once per module: the slow step
        current = current_diffs(module, names, mutated)
        lost = [n for n in names
                if not current[n] or diff_fingerprint(current[n]) != equivalent[n]["diff"]]
        siblings: dict[str, str] = {}
        if lost:
            funcs = {function_of(n) for n in lost}
            siblings = current_diffs(module, [m for m in mutated[0] if function_of(m) in funcs],
                                     mutated)
        for name in names:
            diff = current[name]
            fp = diff_fingerprint(diff) if diff else ""
            entry = {"state": "ok", "fingerprint": fp, "diff": diff, "now": name}
            if name in lost:
                moved = [m for m, d in siblings.items() if function_of(m) == function_of(name)
                         and diff_fingerprint(d) == equivalent[name]["diff"]]
                entry.update(state="renumbered", now=moved[0]) if moved else entry.update(
                    state="stale", now="")
            report[name] = entry
    return report


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of the per-module numbers in ``results``.

    Examples
    --------
    >>> print(format_table({"m.py": summarise(20, {"a": "killed", "b": "survived"})}))
    ... # doctest: +NORMALIZE_WHITESPACE
    | module | generated | sampled | killed | survived | timeout | other | score | 95% Wilson
    | equivalent | score (non-equivalent) | 95% Wilson |
    |---|---|---|---|---|---|---|---|---|---|---|---|
    | m.py | 20 | 2 | 1 | 1 | 0 | 0 | 0.50 | [0.09, 0.91] | 0 | 0.50 | [0.09, 0.91] |
    """
    rows = ["| module | generated | sampled | killed | survived | timeout | other | score "
            "| 95% Wilson | equivalent | score (non-equivalent) | 95% Wilson |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for module, r in results.items():
        rows.append(f"| {module} | {r['generated']} | {r['sampled']} | {r['killed']} "
                    f"| {r['survived']} | {r['timeout']} | {sum(r['other'].values())} "
                    f"| {_fmt(r['score'])} | {_fmt_ci(r['wilson95'])} "
                    f"| {len(r.get('equivalent', []))} | {_fmt(r.get('score_non_equivalent'))} "
                    f"| {_fmt_ci(r.get('wilson95_non_equivalent'))} |")
    return "\n".join(rows)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "n/a" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def load_equivalent(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, dict[str, str]]:
    """``[tool.crelu-mutation.equivalent]``: mutant name -> ``{"reason", "diff"}``.

    Each verdict is an inline table ``{reason = "...", diff = "<fingerprint>"}``: why the
    mutant is equivalent, and the `diff_fingerprint` of the mutation that was judged.
    """
    tomllib = _toml()

    data = tomllib.loads(pyproject.read_text("utf-8"))
    table = data.get("tool", {}).get("crelu-mutation", {}).get("equivalent", {})
    for name, value in table.items():
        if not isinstance(value, dict) or not str(value.get("reason", "")).strip():
            raise ValueError(f"[tool.crelu-mutation.equivalent] {name}: give the verdict as "
                             f"{{reason = \"...\", diff = \"...\"}} (python -m verify.mutation "
                             f"--check-equivalent prints the fingerprint)")
        if not re.fullmatch(r"[0-9a-f]{16}", str(value.get("diff", ""))):
            raise ValueError(f"[tool.crelu-mutation.equivalent] {name}: diff must be the "
                             f"16-digit diff_fingerprint of the mutation judged, got "
                             f"{value.get('diff')!r}")
    return {k: {"reason": str(v["reason"]), "diff": str(v["diff"])} for k, v in table.items()}


def write_results(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, then rename)."""
    from verify.atomic import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


_SUMMARY_KEYS = ("generated", "sampled", "killed", "survived", "no_tests", "timeout", "other",
                 "score", "wilson95", "survivors", "equivalent", "equivalent_stale",
                 "score_non_equivalent",
                 "wilson95_non_equivalent")


def _write(out: Path, results: Mapping[str, Any]) -> None:
    import mutmut

    write_results(out, {
        "about": "per module: the command, mutmut's verdict for each sampled mutant and the "
                 "diff of every one not killed; written by python -m verify.mutation",
        "mutmut": mutmut.__version__, "modules": results,
    })


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m verify.mutation [--sample N] [--seed S] [--module M ...]``."""
    from verify.argtypes import at_least

    parser = argparse.ArgumentParser(prog="python -m verify.mutation", description=__doc__
                                     .split("\n")[0])
    parser.add_argument("--sample", type=at_least(1), default=None,
                        help="mutants per module, drawn at random (default: all)")
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--module", action="append", default=None,
                        help="only this module (repeatable), e.g. theory/frames.py")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--timeout", type=at_least(1), default=3600,
                        help="seconds for one module's mutmut run")
    parser.add_argument("--mutant", action="append", default=None,
                        help="run exactly these mutants (names as mutmut prints them) of the one "
                             "--module, instead of a sample; results are printed, not written")
    parser.add_argument("--recheck", action="store_true",
                        help="rerun only the survivors recorded in --out (after tests were "
                             "added) and update their verdicts; the first run's counts are kept")
    parser.add_argument("--check-equivalent", action="store_true",
                        help="run nothing: check every [tool.crelu-mutation.equivalent] verdict "
                             "against the mutants of the current source (exit 1 if one is "
                             "stale), printing the current diff and fingerprint of each")
    parser.add_argument("--rescore", action="store_true",
                        help="run nothing: recompute the scores in --out with the current "
                             "[tool.crelu-mutation.equivalent] verdicts")
    args = parser.parse_args(argv)

    modules = load_modules()
    verdicts = load_equivalent()
    if args.check_equivalent:
        report = check_equivalent(verdicts)
        for name, r in report.items():
            print(f"{r['state']}: {name} (its diff now: {r['fingerprint'] or 'none'})"
                  + (f" -> the judged mutation is now {r['now']}"
                     if r["state"] == "renumbered" else ""))
            if r["state"] == "stale":
                print(r["diff"] or "  (mutmut no longer generates this mutant)")
        stale = [n for n, r in report.items() if r["state"] != "ok"]
        print(f"{len(report) - len(stale)} of {len(report)} verdicts match the current source")
        return 1 if stale else 0
    equivalent = {k: v["diff"] for k, v in verdicts.items()}
    chosen = args.module or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        parser.error(f"not in [tool.crelu-mutation.modules]: {', '.join(unknown)}")
    if args.mutant and len(chosen) != 1:
        parser.error("--mutant needs exactly one --module")
    if args.mutant and args.recheck:
        parser.error("--mutant and --recheck exclude each other")

    out = args.out if args.out.is_absolute() else ROOT / args.out
    work = args.work if args.work.is_absolute() else ROOT / args.work
    previous = json.loads(out.read_text("utf-8")) if out.is_file() and not args.mutant else {}
    results = dict(previous.get("modules", {}))
    if args.recheck:
        missing = [m for m in chosen if m not in results]
        if args.module and missing:
            parser.error(f"--recheck: {out} has no results for {', '.join(missing)}")
        chosen = [m for m in chosen if m in results]
    command = "python -m verify.mutation " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.rescore:
        for module, old in results.items():
            keep = {k: v for k, v in old.items() if k not in _SUMMARY_KEYS}
            results[module] = {**summarise(old["generated"], old["mutants"], equivalent,
                                           old.get("diffs")), **keep}
        _write(out, results)
        print(format_table(results))
        return 0
    for module in chosen:
        names = list_mutants(module)
        if args.mutant:
            bad = [m for m in args.mutant if m not in names]
            if bad:
                parser.error(f"{module} has no mutant {bad[0]}")
            picked = list(args.mutant)
        elif args.recheck:
            picked = results[module]["survivors"]
            if not picked:
                continue
            gone = [m for m in picked if m not in names]
            if gone:
                raise RuntimeError(f"{module} changed since the run: no mutant {gone[0]} now")
        else:
            picked = sample_mutants(names, args.sample, seed=args.seed, module=module)
        start = time.monotonic()
        statuses, diffs, _log = run_module(module, modules[module], picked, work, args.timeout)
        seconds = time.monotonic() - start
        if args.mutant:
            for n, s in statuses.items():
                print(f"{s}: {n}")
            continue
        if args.recheck:
            old = results[module]
            first = old.get("first_run") or {k: old[k] for k in
                                             ("killed", "survived", "no_tests", "timeout",
                                              "score", "wilson95", "survivors")}
            merged = {**old["mutants"], **statuses}
            merged_diffs = {**{k: v for k, v in old["diffs"].items() if k not in statuses},
                            **diffs}
            summary = summarise(old["generated"], merged, equivalent, merged_diffs)
            summary.update(command=old["command"], tests=modules[module],
                           seconds=old["seconds"], mutants=merged,
                           diffs=merged_diffs,
                           first_run=first, recheck={"command": command, "mutants": statuses,
                                                     "seconds": round(seconds, 1)})
        else:
            summary = summarise(len(names), statuses, equivalent, diffs)
            summary.update(command=command, tests=modules[module], seconds=round(seconds, 1),
                           mutants=statuses, diffs=diffs)
        print(format_table({module: summary}).splitlines()[-1], flush=True)
        results[module] = summary
        _write(out, results)
    if not args.mutant:
        print(format_table(results))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
