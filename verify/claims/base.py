"""The claim record and its runner.

A claim is one checkable statement of the theory (kind ``"theorem"``) or one empirical
finding of the paper at our scale (kind ``"replication"``). Each claim owns

* ``check(ctx)``: runs the experiment on the intended input and returns an :class:`Outcome`;
* ``negative_control(ctx)``: runs *the same check* on a deliberately broken input (ReLU in
  place of CReLU, a rank-deficient bank, a bound scaled down, ...) and returns its
  :class:`Outcome`. The control is *expected to fail*; if it passes, the check could not
  have failed, and the claim is reported as ``"fail"`` with the reason recorded.

Tolerances are fixed in the claim (``threshold``) together with the reason for them
(``tolerance_rationale``) before any run.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

Status = Literal["pass", "fail", "inconclusive"]
Kind = Literal["theorem", "replication"]


@dataclasses.dataclass
class Outcome:
    """What one run of a check gave: a status, the measured numbers and figure paths."""

    status: Status
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Context:
    """Everything a claim may depend on: profile, seed and where figures go.

    ``out_dir`` is where the claims write (the runner's temporary folder, renamed at the end
    of the run); ``final_dir`` is the report folder it becomes (default: ``out_dir``). A path a
    claim records in its measured values goes through :meth:`report_path`.
    """

    profile: Literal["quick", "full"]
    seed: int
    out_dir: Path
    final_dir: Path | None = None

    def report_path(self, path: str | Path) -> str:
        """``path`` as it will be once the report is in place (under ``final_dir``)."""
        path = Path(path)
        if self.final_dir is None:
            return str(path)
        try:
            return str(Path(self.final_dir) / path.resolve().relative_to(self.out_dir.resolve()))
        except ValueError:
            return str(path)

    @property
    def figures_dir(self) -> Path:
        path = self.out_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded from the run seed and a claim-specific salt (reproducible)."""
        digest = sum((i + 1) * ord(ch) for i, ch in enumerate(salt))
        return np.random.default_rng([self.seed, digest])


@dataclasses.dataclass
class Claim:
    """One record of the registry (docs/howto/verify.md, "Adding a claim").

    ``source`` says where the statement comes from (the paper's section, or our derivation
    with its docs page); ``docs`` is the documentation page that states and proves it, as a
    path under docs/ with a section anchor, e.g. ``"theory/maxpool.md#proofs"``.
    """

    id: str
    kind: Kind
    statement: str
    source: str
    threshold: str
    tolerance_rationale: str
    check: Callable[[Context], Outcome]
    negative_control: Callable[[Context], Outcome]
    negative_control_description: str
    profiles: tuple[str, ...] = ("quick", "full")
    docs: str = ""

    def run(self, ctx: Context) -> dict[str, Any]:
        """Run check and control; return the report.json record of this claim."""
        t0 = time.perf_counter()
        outcome = _guarded(self.check, ctx)
        control = _guarded(self.negative_control, ctx)
        status: Status = outcome.status
        notes: list[str] = []
        if control.status == "pass":
            # The same check accepted a deliberately broken input: it cannot fail.
            status = "fail"
            notes.append("negative control passed: the check cannot fail, so it proves nothing")
        if "error" in outcome.measured:
            notes.append("check raised: " + str(outcome.measured["error"]).splitlines()[-1])
        return {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "source": self.source,
            "docs": self.docs,
            "status": status,
            "measured": _jsonable(outcome.measured),
            "threshold": self.threshold,
            "tolerance_rationale": self.tolerance_rationale,
            "seed": ctx.seed,
            "figures": [_relative(p, ctx.out_dir) for p in outcome.figures + control.figures],
            "negative_control": {
                "description": self.negative_control_description,
                "status": control.status,
                "expected": "fail",
                "measured": _jsonable(control.measured),
            },
            "notes": notes,
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }


def _guarded(fn: Callable[[Context], Outcome], ctx: Context) -> Outcome:
    """Run ``fn``; an exception is a failed check (with its traceback), never a crash."""
    try:
        out = fn(ctx)
    except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not hidden
        return Outcome("fail", {"error": "".join(traceback.format_exception(exc))[-2000:]})
    if not isinstance(out, Outcome):
        return Outcome("fail", {"error": f"check returned {type(out).__name__}, not Outcome"})
    return out


def _relative(path: str | Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples so that json.dumps accepts them."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if np.isfinite(value) else str(value)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def status_from(ok: bool) -> Status:
    """``"pass"`` if ok else ``"fail"``."""
    return "pass" if bool(ok) else "fail"
