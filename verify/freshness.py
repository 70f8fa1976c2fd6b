r"""Freshness of committed results: a hash of the configuration, code and weights behind them.

The quick profile of ``crelu verify`` reads results computed once and committed
(``verify/results/*.json``). A file computed by other code, with another configuration or
from other weights than the checked-out ones proves nothing about them, so every such file
carries, under the key :data:`FIELD` (``"freshness"``), the :func:`fingerprint` that the
command writing it computed, and the claims that read it call :func:`check` first: a file
without the field, or whose fingerprint differs from the one the checked-out code computes
now, raises :class:`StaleResultsError` with the command that regenerates it, and the claims
report ``error``.

Notes
-----
A fingerprint is the dictionary

``{"scheme": "crelu-freshness/1", "sha256": H, "config_sha256": Hc, "code_sha256": Hm,
"files_sha256": Hf, "config": ..., "code": {module: sha256}, "files": {name: sha256}}``

with, all sha256 in hexadecimal,

* ``Hc``: of the configuration as canonical JSON (sorted keys, no spaces); the
  configuration itself is stored too, so that a difference can be named;
* ``code[m]``: of ``ast.unparse`` of module ``m``'s syntax tree with its docstrings removed,
  so that comments, docstrings and formatting do not count but every statement does;
  ``Hm`` of the sorted ``module:digest`` lines;
* ``files[name]``: of the bytes of a file the results depend on (the weights); ``Hf`` of
  the sorted ``name:digest`` lines;
* ``H`` of ``Hc``, ``Hm`` and ``Hf``: the one number :func:`check` compares.

Only ``sha256`` is required of a stored fingerprint; the other keys serve to say what
changed. Extra keys in the results file or in its fingerprint are ignored, so a command may
add its own fields. To make a new results file fresh-checked: compute
``fingerprint(config, modules, files)`` when writing it and store it under
``result[FIELD]`` (:func:`stamp`); before reading it, build the same fingerprint from the
checked-out configuration and call :func:`check`.

Examples
--------
>>> from verify import freshness
>>> result = {"rows": [1, 2]}
>>> expected = freshness.fingerprint({"steps": 10}, ["verify.freshness"])
>>> freshness.stamp(result, expected)["freshness"]["sha256"] == expected["sha256"]
True
>>> freshness.check(result, expected, path="r.json", regenerate="make r.json")
>>> other = freshness.fingerprint({"steps": 11}, ["verify.freshness"])
>>> freshness.check(result, other, path="r.json", regenerate="make r.json")
Traceback (most recent call last):
...
verify.freshness.StaleResultsError: r.json is stale: its configuration differs (steps: stored 10, now 11); regenerate it with `make r.json`
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

#: The key of a results file that holds its fingerprint.
FIELD = "freshness"
SCHEME = "crelu-freshness/1"


class StaleResultsError(ValueError):
    """A committed results file does not come from the checked-out configuration and code."""


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def canonical_json(obj: Any) -> str:
    """``obj`` as JSON with sorted keys and no spaces (tuples become lists)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_digest(source: str) -> str:
    """sha256 of ``ast.unparse`` of the source with its docstrings removed."""
    return _sha(ast.unparse(_strip_docstrings(ast.parse(source))))


def module_digest(module: str) -> str:
    """:func:`source_digest` of an importable module's file (found, not imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"no Python source for module {module!r}")
    return source_digest(Path(spec.origin).read_text())


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(config: Any, modules: Iterable[str],
                files: Mapping[str, str | os.PathLike] | None = None) -> dict[str, Any]:
    """The fingerprint of results computed with ``config`` by ``modules`` from ``files``.

    Parameters
    ----------
    config : JSON-able
        Every setting that changes the results (the experiment's configuration).
    modules : iterable of str
        Importable names of the modules whose code computes them (experiment, training,
        models, data loaders).
    files : mapping name -> path, optional
        Files the results depend on (the weights); ``name`` is how the fingerprint lists it.
    """
    config = json.loads(canonical_json(config))   # tuples -> lists: what a reader sees
    code = {m: module_digest(m) for m in sorted(set(modules))}
    hashed = {name: file_digest(p) for name, p in sorted((files or {}).items())}
    config_sha = _sha(canonical_json(config))
    code_sha = _sha("\n".join(f"{m}:{d}" for m, d in code.items()))
    files_sha = _sha("\n".join(f"{n}:{d}" for n, d in hashed.items()))
    return {"scheme": SCHEME, "sha256": _sha(f"{config_sha}\n{code_sha}\n{files_sha}"),
            "config_sha256": config_sha, "code_sha256": code_sha, "files_sha256": files_sha,
            "config": config, "code": code, "files": hashed}


def stamp(result: dict[str, Any], fp: dict[str, Any]) -> dict[str, Any]:
    """Store the fingerprint ``fp`` in ``result`` under :data:`FIELD`; return ``result``."""
    result[FIELD] = fp
    return result


def _config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in old:
                out.append(f"{name}: not stored, now {canonical_json(new[k])}")
            elif k not in new:
                out.append(f"{name}: stored {canonical_json(old[k])}, now absent")
            else:
                out += _config_changes(old[k], new[k], name)
        return out
    if old != new:
        return [f"{prefix or 'configuration'}: stored {canonical_json(old)}, now "
                f"{canonical_json(new)}"]
    return []


def differences(stored: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """What differs between a stored fingerprint and the expected one, in words."""
    out = []
    if stored.get("config_sha256") != expected["config_sha256"]:
        if "config" in stored:
            changes = _config_changes(stored["config"], expected["config"])
            out.append("its configuration differs (" + "; ".join(changes[:4])
                       + ("; ..." if len(changes) > 4 else "") + ")")
        else:
            out.append("its configuration differs")
    if stored.get("code_sha256") != expected["code_sha256"]:
        code = stored.get("code", {})
        changed = [m for m in expected["code"] if code.get(m) != expected["code"][m]]
        changed += [m for m in code if m not in expected["code"]]
        out.append("the code that computes it changed since (" + ", ".join(changed) + ")"
                   if changed else "the code that computes it changed since")
    if stored.get("files_sha256") != expected["files_sha256"]:
        files = stored.get("files", {})
        changed = sorted(n for n in set(files) | set(expected["files"])
                         if files.get(n) != expected["files"].get(n))
        out.append("it was computed from other files (" + ", ".join(changed) + ")")
    if not out and stored.get("sha256") != expected["sha256"]:
        out.append("its fingerprint differs")
    return out


def check(result: Mapping[str, Any], expected: Mapping[str, Any], *, path: str | os.PathLike,
          regenerate: str) -> None:
    """Raise :class:`StaleResultsError` unless ``result`` carries the ``expected`` fingerprint.

    The message names ``path``, what differs (configuration keys, modules, files) and the
    command ``regenerate`` that rewrites the file.
    """
    stored = result.get(FIELD) if isinstance(result, Mapping) else None
    if not isinstance(stored, Mapping) or "sha256" not in stored:
        raise StaleResultsError(
            f"{path} has no '{FIELD}' fingerprint (written before results were fingerprinted, "
            f"or by another program), so nothing says it comes from the checked-out code; "
            f"regenerate it with `{regenerate}`")
    if stored["sha256"] == expected["sha256"]:
        return
    raise StaleResultsError(f"{path} is stale: {'; '.join(differences(stored, expected))}; "
                            f"regenerate it with `{regenerate}`")


# ----------------------------------------------------------------------------- experiments
#: The code of the classification table (verify.table_exp): experiment, training, models,
#: activations and the loaders of its data sets.
TABLE_CODE = ("verify.table_exp", "verify.train", "verify.models", "theory.activations",
              "verify.data.fashion_mnist", "verify.data.photo_task", "verify.data.images")
#: The code of the invariance scores (verify.invariance_exp): experiment, scores, the models
#: and how they are loaded, the images.
INVARIANCE_CODE = ("verify.invariance_exp", "theory.invariance", "verify.models",
                   "theory.activations", "verify.train", "verify.data.fashion_mnist")
#: Training settings that do not change what is computed (only how fast, or what is logged).
_NOT_CONFIG = ("threads", "log_every")


def table_fingerprint(data: Iterable[str], seeds: Iterable[int], variants: Iterable[str],
                      steps: int | None = None) -> dict[str, Any]:
    """The fingerprint of a classification table run on ``data`` x ``variants`` x ``seeds``.

    Configuration: per data set its entry of ``verify.configs.TABLE_CONFIGS`` (the training
    template without ``threads``/``log_every``, with ``steps`` if overridden, and the subset
    sizes), the seeds and the variants. Code: :data:`TABLE_CODE`.
    """
    import dataclasses

    from verify.configs import TABLE_CONFIGS

    cfg: dict[str, Any] = {}
    for name in data:
        spec = TABLE_CONFIGS[name]
        template = {k: v for k, v in dataclasses.asdict(spec["config"]).items()
                    if k not in _NOT_CONFIG}
        if steps is not None:   # as run_table overrides a smoke run's schedule
            template.update(steps=int(steps), warmup_steps=0, checkpoints=[])
        cfg[name] = {**template, "n_train": spec["n_train"], "n_test": spec["n_test"]}
    return fingerprint({"data": cfg, "seeds": [int(s) for s in seeds],
                        "variants": list(variants)}, TABLE_CODE)


def table_expected(result: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint the checked-out code gives the table run that ``result`` records (its
    data sets, seeds and variants), with the configured steps."""
    return table_fingerprint(list(result.get("configs", {})), result.get("seeds", []),
                             result.get("variants", []))


def invariance_fingerprint(image_seed: int, weights: str, models: Iterable[str],
                           weight_files: Mapping[str, str | os.PathLike] | None = None
                           ) -> dict[str, Any]:
    """The fingerprint of invariance scores (``verify.invariance_exp``).

    Configuration: the image count, firing rate, top fraction, layers and the names of every
    family's transformations, the image seed, ``weights`` (``"shipped"`` or ``"retrained"``)
    and the models scored. Files: ``weight_files`` (name -> path; the shipped weights).
    Code: :data:`INVARIANCE_CODE`.
    """
    from verify import invariance_exp as ie

    config = {"n_images": ie.N_IMAGES, "rate": ie.RATE, "top_fraction": ie.TOP_FRACTION,
              "layers": list(ie.LAYERS),
              "families": {fam: [t.__name__ for t in make()] for fam, make in ie.FAMILIES.items()},
              "image_seed": int(image_seed), "weights": weights, "models": sorted(models)}
    return fingerprint(config, INVARIANCE_CODE, weight_files)


def shipped_weight_files(stems: Iterable[str]) -> dict[str, Path]:
    """name -> path of the shipped weights (``verify/weights/<stem>.safetensors``)."""
    from verify.configs import RESULTS_DIR

    weights = RESULTS_DIR.parent / "weights"
    return {f"{stem}.safetensors": weights / f"{stem}.safetensors" for stem in sorted(stems)}


__all__ = ["FIELD", "SCHEME", "StaleResultsError", "canonical_json", "check", "differences",
           "file_digest", "fingerprint", "invariance_fingerprint", "module_digest",
           "shipped_weight_files", "source_digest", "stamp", "table_expected",
           "table_fingerprint"]
