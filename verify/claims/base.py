"""The claim record and its runner.

A claim is one checkable statement of the theory (kind ``"theorem"``) or one empirical
finding of the paper at our scale (kind ``"replication"``). Each claim owns

* ``check(ctx)``: runs the experiment on the intended input and returns an :class:`Outcome`;
* its *controls*, each running *the same check* on an input whose answer is known:

  - a theorem claim has one ``negative_control``: a deliberately broken input (ReLU in place
    of CReLU, a rank-deficient bank, a bound scaled down, ...). It must **fail**. If it
    passes, the check could not have failed: the claim is ``"fail"``. If it is inconclusive
    or raises, the check's failure was never shown: the claim is ``"error"``.
  - a replication claim has a ``planted_positive`` (synthetic data in which the effect is
    built in: the check must **pass**, it has power) and a ``planted_null`` (no effect, or
    the reversed effect: the check must **not pass**). If the planted positive does not pass,
    or the planted null passes, or either raises, the check could not tell: the claim is
    ``"error"``.

Statuses: ``"pass"``, ``"fail"``, ``"inconclusive"`` (replication claims only: the data do
not decide) and ``"error"`` (the check or a control raised, or a control did not behave as
it must: the claim's verdict cannot be trusted). ``"error"`` counts as a failure in the exit
status of ``crelu verify``.

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

Status = Literal["pass", "fail", "inconclusive", "error"]
Kind = Literal["theorem", "replication"]
ControlKind = Literal["negative", "planted_positive", "planted_null"]
STATUSES = ("pass", "fail", "inconclusive", "error")

#: What each kind of control must report (``"not pass"``: fail or inconclusive).
EXPECTED = {"negative": "fail", "planted_positive": "pass", "planted_null": "not pass"}


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


@dataclasses.dataclass(frozen=True)
class Control:
    """One control of a claim: what it is, what it must report, and how to run it."""

    kind: ControlKind
    description: str
    run: Callable[[Context], Outcome]

    @property
    def expected(self) -> str:
        return EXPECTED[self.kind]

    def met(self, status: str) -> bool:
        """Whether a control that reported ``status`` behaved as it must."""
        if self.kind == "negative":
            return status == "fail"
        if self.kind == "planted_positive":
            return status == "pass"
        return status in ("fail", "inconclusive")


@dataclasses.dataclass
class Claim:
    """One record of the registry (docs/howto/verify.md, "Adding a claim").

    ``source`` says where the statement comes from (the paper's section, or our derivation
    with its docs page); ``docs`` is the documentation page that states and proves it, as a
    path under docs/ with a section anchor, e.g. ``"theory/maxpool.md#proofs"``.

    A theorem claim gives ``negative_control`` (with its description); a replication claim
    gives ``planted_positive`` and ``planted_null`` (with theirs). See the module notes for
    what each must report and what the runner concludes when it does not.
    """

    id: str
    kind: Kind
    statement: str
    source: str
    threshold: str
    tolerance_rationale: str
    check: Callable[[Context], Outcome]
    negative_control: Callable[[Context], Outcome] | None = None
    negative_control_description: str = ""
    planted_positive: Callable[[Context], Outcome] | None = None
    planted_positive_description: str = ""
    planted_null: Callable[[Context], Outcome] | None = None
    planted_null_description: str = ""
    profiles: tuple[str, ...] = ("quick", "full")
    docs: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("theorem", "replication"):
            raise ValueError(f"claim {self.id}: kind must be 'theorem' or 'replication', "
                             f"got {self.kind!r}")
        if self.kind == "theorem":
            if self.negative_control is None or not self.negative_control_description:
                raise ValueError(f"theorem claim {self.id} needs a negative_control and its "
                                 "description")
            if self.planted_positive is not None or self.planted_null is not None:
                raise ValueError(f"theorem claim {self.id}: planted controls are for "
                                 "replication claims; a theorem claim has a negative_control")
        else:
            missing = [name for name in ("planted_positive", "planted_null")
                       if getattr(self, name) is None or not getattr(self, f"{name}_description")]
            if missing:
                raise ValueError(f"replication claim {self.id} needs {' and '.join(missing)} "
                                 "(each with its description)")
            if self.negative_control is not None:
                raise ValueError(f"replication claim {self.id}: give a planted_null (no or the "
                                 "reversed effect) instead of a negative_control")

    @property
    def controls(self) -> list[Control]:
        """The controls of this claim, in report order."""
        if self.kind == "theorem":
            return [Control("negative", self.negative_control_description,
                            self.negative_control)]
        return [Control("planted_positive", self.planted_positive_description,
                        self.planted_positive),
                Control("planted_null", self.planted_null_description, self.planted_null)]

    def run(self, ctx: Context) -> dict[str, Any]:
        """Run check and controls; return the report.json record of this claim."""
        t0 = time.perf_counter()
        outcome = _guarded(self.check, ctx)
        ran = [(control, _guarded(control.run, ctx)) for control in self.controls]
        status, notes = verdict(self.kind, outcome, [(c, o.status) for c, o in ran])
        if "error" in outcome.measured:
            notes.insert(0, "check raised: " + _last_line(outcome.measured["error"]))
        controls = [{"kind": c.kind, "description": c.description, "status": o.status,
                     "expected": c.expected, "measured": _jsonable(o.measured)}
                    for c, o in ran]
        record = {
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
            "figures": [_relative(p, ctx.out_dir)
                        for p in outcome.figures + [f for _, o in ran for f in o.figures]],
            "controls": controls,
            "notes": notes,
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }
        if self.kind == "theorem":  # the one control, under its historical key
            record["negative_control"] = {k: v for k, v in controls[0].items() if k != "kind"}
        return record


def verdict(kind: str, outcome: Outcome, controls: list[tuple[Control, str]]
            ) -> tuple[Status, list[str]]:
    """The claim's status from its check's and its controls' statuses, with the reasons.

    * the check raised (status ``"error"``): ``"error"``;
    * a theorem claim whose negative control passed: ``"fail"`` (the check cannot fail);
    * a control that raised, a negative control that was inconclusive, a planted positive
      that did not pass, a planted null that passed: ``"error"`` (the check could not tell);
    * otherwise the check's status.
    """
    notes: list[str] = []
    status: Status = outcome.status if outcome.status in STATUSES else "error"
    if outcome.status not in STATUSES:
        notes.append(f"the check returned the unknown status {outcome.status!r}")
    if kind == "theorem" and outcome.status == "inconclusive":
        status = "error"
        notes.append("a theorem check must pass or fail; it returned inconclusive")
    broken = False
    for control, got in controls:
        if control.met(got):
            continue
        name = control.kind.replace("_", " ")
        if got == "error":
            notes.append(f"{name} control raised: the check's behaviour on it is unknown")
            broken = True
        elif control.kind == "negative" and got == "pass":
            notes.append("negative control passed: the check cannot fail, so it proves "
                         "nothing")
            if status != "error":
                status = "fail"
        elif control.kind == "negative":
            notes.append(f"negative control was {got}, not fail: the check was never seen "
                         "to fail, so its pass proves nothing")
            broken = True
        elif control.kind == "planted_positive":
            notes.append(f"planted positive was {got}, not pass: the check could not detect "
                         "an effect built into the data (no power)")
            broken = True
        else:
            notes.append(f"planted null was {got}: the check passed without the effect, so "
                         "it could not tell")
            broken = True
    if broken:
        status = "error"
    return status, notes


def _guarded(fn: Callable[[Context], Outcome], ctx: Context) -> Outcome:
    """Run ``fn``; an exception is an ``"error"`` (with its traceback), never a crash."""
    try:
        out = fn(ctx)
    except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not hidden
        return Outcome("error", {"error": "".join(traceback.format_exception(exc))[-2000:]})
    if not isinstance(out, Outcome):
        return Outcome("error", {"error": f"check returned {type(out).__name__}, not Outcome"})
    return out


def _last_line(text: Any) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else str(text)


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
