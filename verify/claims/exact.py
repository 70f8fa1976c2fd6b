r"""The verdict of an exact-recovery check: residual at rounding level, error within cond x it.

Notes
-----
For features that really are $\operatorname{CReLU}(Ax)$ (or, through max-pooling with its
switches, the selected values $W_x^T x$) the system $Ax' = z$ is *consistent*, so an exact
inverse must leave a relative residual $\|Ax' - z\|/\|z\|$ at rounding level, not merely
"small". The bound is the one of :mod:`theory.checks`:

* direct solvers (``fft``, ``dense``): the rounding bound
  $\tau = 4\sqrt{C k_h k_w K}\,\operatorname{cond}(A)\,u$
  (:func:`theory.checks.rounding_residual_tolerance`, the Higham-Mary probabilistic bound of
  the length-$C k_h k_w$ dot products that computed $z$, amplified by cond), and the
  relative error must be at most :func:`theory.recovery_tolerance` (the same number:
  a backward-stable solve turns that backward error into a forward error cond times
  larger, which $\tau$ already includes);
* LSMR and CGLS: $\tau$ or the solver's own stopping guarantee $\mathrm{btol} + (\mathrm{atol} +
  4(k + \sqrt{n})u)\,\|A\|\|x'\|/\|z\|$ with its recurrence drift
  (:func:`theory.checks.lsmr_residual_tolerance`, reported by the inverse as
  ``checks["residual_tolerance"]``), whichever is larger; the error must be at most
  $\operatorname{cond}(A)$ times that bound (for an injective $A$,
  $\|x'-x\|/\|x\| \le \operatorname{cond}(A)\,\|Ax'-z\|/\|z\|$), and a run that stopped
  on its iteration cap (or stagnated) fails whatever its residual.

The tolerance never grows with the *measured* residual: a wrong answer cannot widen its own
allowance. Data that are not consistent (ReLU features, wrong switches) leave a residual far
above $\tau$ and fail on every solver.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from theory import recovery_tolerance
from theory.checks import rounding_residual_tolerance


#: Solver names (prefixes) whose answer is checked against their stopping guarantee.
ITERATIVE = ("lsmr", "cgls")


def residual_bound(layer, cond: float, res) -> tuple[float, str]:
    """The relative-residual bound of consistent data for the solver ``res`` used, and its name."""
    c, (kh, kw), k = layer.in_channels, layer.kernel_size, layer.out_channels
    rounding = rounding_residual_tolerance(c * kh * kw, k, cond)
    if not str(res.solver).startswith(ITERATIVE):
        return rounding, "rounding 4 sqrt(C kh kw K) cond u"
    stopping = float(res.checks.get("residual_tolerance", 0.0))
    if stopping > rounding:
        return stopping, (f"{str(res.solver).split('+')[0].upper()} stopping guarantee "
                          "(btol + (atol + drift) ||A|| ||x'|| / ||z||)")
    return rounding, "rounding 4 sqrt(C kh kw K) cond u"


def exact_verdict(layer, fb, res, x: np.ndarray, relative_residual: float) -> dict[str, Any]:
    """Measured numbers and ``"pass"`` of an exact-recovery case (module notes).

    ``relative_residual`` is $\\|Ax' - z\\|/\\|z\\|$ as the claim measured it; ``fb`` the
    certified frame bounds of the operator that was inverted (its ``cond``).
    """
    err = float(np.linalg.norm(np.asarray(res.x) - x) / np.linalg.norm(x))
    injective = bool(fb.injective)
    cond = float(fb.cond) if injective else float("inf")
    iterative = str(res.solver).startswith(ITERATIVE)
    res_tol, which = residual_bound(layer, cond, res)
    err_tol = cond * res_tol if iterative else recovery_tolerance(layer, fb)
    converged = bool(res.converged)
    ok = injective and converged and relative_residual <= res_tol and err <= err_tol
    return {"solver": res.solver, "relative_error": err, "error_tolerance": err_tol,
            "relative_residual": relative_residual, "residual_tolerance": res_tol,
            "residual_bound": which, "cond": cond, "converged": converged,
            "iterations": int(res.iterations), "pass": bool(ok)}


__all__ = ["exact_verdict", "residual_bound"]
