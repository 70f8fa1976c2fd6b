"""The crelu command line: help for every option, --version, range checks, lazy imports."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from verify import cli

HEAVY = ("torch", "numpy", "scipy", "matplotlib", "sklearn", "skimage", "theory",
         "verify.claims", "verify.runner", "verify.train", "verify.deep")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_is_registered_and_listed_in_the_readme():
    from pathlib import Path

    names = set(_subparsers(cli.build_parser()))
    assert names == {"verify", "train", "train-length", "reconstruct", "table", "invariance",
                     "inspect"}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in names:
        assert f"crelu {name}" in readme, name


def test_every_option_has_help_and_help_has_no_rest_markup():
    parser = cli.build_parser()
    texts = [parser.format_help()]
    for name, sub in _subparsers(parser).items():
        texts.append(sub.format_help())
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"crelu {name} {action.dest}: no help"
    for text in texts:
        assert "``" not in text
        assert not re.search(r":(math|func|mod|class|data|meth):`", text), text


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"crelu {version('crelu-theory')}"


@pytest.mark.parametrize("argv, message", [
    (["verify", "--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["verify", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["verify", "--profile", "slow"], "invalid choice"),
    (["train", "relu", "--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
    (["train", "relu", "--lr=-1e-3"], "argument --lr: must be a number > 0"),
    (["train", "relu", "--lr", "nan"], "argument --lr: expected a finite number"),
    (["train", "relu", "--kernel1", "4"], "argument --kernel1: must be an odd integer >= 1"),
    (["train", "relu", "--width", "1"], "argument --width: must be an integer >= 2"),
    (["train", "relu", "--threads", "0"], "argument --threads: must be an integer >= 1"),
    (["reconstruct", "a.png", "--out", "b.png", "--stages", "0"],
     "argument --stages: must be an integer >= 1, got 0"),
    (["reconstruct", "a.png", "--out", "b.png", "--tol", "1"],
     "argument --tol: must be a number in the open interval (0, 1), got 1"),
    (["reconstruct", "a.png", "--out", "b.png", "--baseline-steps", "-5"],
     "argument --baseline-steps: must be an integer >= 0"),
    (["table", "--seeds", "0", "-2"], "argument --seeds: must be an integer >= 0, got -2"),
    (["table", "--steps", "0"], "argument --steps: must be an integer >= 1"),
    (["invariance", "--seed", "-3"], "argument --seed: must be an integer >= 0"),
    (["inspect", "m.onnx", "--patches", "0"], "argument --patches: must be an integer >= 1"),
    (["inspect", "m.onnx", "--bounds-budget", "-1"], "argument --bounds-budget: must be a "
     "number >= 0"),
    (["inspect", "m.onnx", "--bounds-tol", "0"], "argument --bounds-tol: must be a number in "
     "the open interval (0, 1)"),
    (["inspect", "m.onnx", "--recon-depth", "-1"], "argument --recon-depth: must be an "
     "integer >= 0"),
])
def test_numeric_options_are_range_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err


def test_building_the_parser_imports_nothing_heavy():
    code = ("import sys\nfrom verify import cli\n"
            "for argv in (['--help'], ['verify', '--help'], ['reconstruct', '--help'],\n"
            "             ['inspect', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            f"or m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert out == "[]", out


def test_verify_prints_the_tally_and_explains_the_control(tmp_path, capsys):
    out = tmp_path / "report"
    rc = cli.main(["verify", "--only", "crelu-identities", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "theorem: negative, must fail" in text.splitlines()[0]
    assert re.search(r"^theorem: +1 pass, 0 fail, 0 error$", text, re.M), text
    assert re.search(r"^replication: +0 pass, 0 fail, 0 inconclusive, 0 error$", text, re.M), text
    assert "must fail; if it passes the claim is marked fail" in " ".join(text.split())
    report = json.loads((out / "report.json").read_text())
    assert report["tally"]["theorem"] == {"pass": 1, "fail": 0, "error": 0}


def test_verify_refuses_a_folder_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    rc = cli.main(["verify", "--only", "crelu-identities", "--out", str(tmp_path),
                   "--no-progress"])
    assert rc == 2 and "holds no earlier report" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").read_text() == "precious"
