r"""What an inverse returns: one result per input, and a batch of them.

Notes
-----
Every inverse of the package (`theory.invert_crelu`,
`theory.invert_crelu_maxpool`, each stage of `theory.invert_deep`) returns an
`InversionResult` (or its pooled subclass) for one input, and an
`InversionBatch` of them for a batch `(N, ...)`. One vocabulary throughout:
`solver` (dense, lsmr, fft, ...), `stopping` (the rule and why the solver stopped),
`converged`, `frame_bounds`, `injective`, `relative_residual` and
`error_bound()`.

With $r = Ax' - z$ and $z = A x$, an injective $A$ gives
$\|x' - x\| \le \|r\|/\sigma_{\min}$ and $\|x\| \ge \|z\|/\sigma_{\max}$, so the
relative error is at most $\operatorname{cond}(A)\,\|r\|/\|z\|$ (`error_bound`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from theory.frames import FrameBounds


@dataclasses.dataclass
class InversionResult:
    """The reconstruction of one input and how it was obtained.

    Attributes
    ----------
    x : numpy.ndarray
        The reconstruction, shape `(C, H, W)`. For a non-injective operator: the
        minimum-norm solution, i.e. the projection of the true input onto the row space.
    z : numpy.ndarray
        The measurements the solve matched: the recovered pre-activation $h_+ - h_-$
        (single layer) or the selected pooled values $g_{\\neq 0}$ (pooled).
    solver : str
    iterations : int
        LSMR iterations; 0 for direct solvers.
    converged : bool
        Whether the solver met its stopping rule (`False` after an iteration cap).
    frame_bounds : FrameBounds or None
        `None` only if no certificate was asked for.
    injective : bool or None
        Whether the frame bounds certify injectivity (`None` without bounds).
    stopping : dict
        The stopping rule and why the solver stopped.
    seconds : float
    relative_residual : float
        $\\|A x - z\\| / \\|z\\|$.
    checks : dict
        The measured numbers of the a-posteriori checks (`theory.checks`): relative
        residual and its tolerance, CReLU overlaps or switch violations, the Rayleigh
        quotient against given bounds, convergence.
    """

    x: np.ndarray
    z: np.ndarray
    solver: str
    iterations: int
    converged: bool
    frame_bounds: FrameBounds | None
    injective: bool | None
    stopping: dict[str, Any]
    seconds: float
    _residual: Callable[[], float] = dataclasses.field(repr=False, compare=False)
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def relative_residual(self) -> float:
        """$\\|A x - z\\| / \\|z\\|$, computed on first access (not part of the timing)."""
        return self._residual()

    @property
    def method(self) -> str:
        """Deprecated name of `solver`."""
        warnings.warn("InversionResult.method is deprecated; use .solver", DeprecationWarning,
                      stacklevel=2)
        return self.solver

    def error_bound(self) -> float:
        """A-posteriori bound `cond * relative_residual` on the relative error.

        `inf` when the operator is not certified injective.
        """
        if self.frame_bounds is None or not self.frame_bounds.injective:
            return float("inf")
        return self.frame_bounds.cond * self.relative_residual


class InversionBatch(Sequence[InversionResult]):
    """The results of a batch, one per input, with batch-level summaries.

    Index or iterate it for the per-input results; `x` stacks their reconstructions.
    The summaries cover the whole batch: `iterations` (the largest), `converged` (all),
    `relative_residual` (of the stacked system), `error_bound()`.
    """

    def __init__(self, results: Sequence[InversionResult], seconds: float,
                 residual: Callable[[], float] | None = None,
                 stopping: dict[str, Any] | None = None):
        if not results:
            raise ValueError("an InversionBatch needs at least one result")
        self._results = list(results)
        self.seconds = seconds
        self._batch_residual = residual
        self._stopping = stopping

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i):
        return self._results[i]

    def __iter__(self) -> Iterator[InversionResult]:
        return iter(self._results)

    @functools.cached_property
    def x(self) -> np.ndarray:
        return np.stack([r.x for r in self._results])

    @functools.cached_property
    def z(self) -> np.ndarray:
        return np.stack([r.z for r in self._results])

    @property
    def solver(self) -> str:
        return self._results[0].solver

    @property
    def method(self) -> str:
        """Deprecated name of `solver`."""
        warnings.warn("InversionBatch.method is deprecated; use .solver", DeprecationWarning,
                      stacklevel=2)
        return self.solver

    @property
    def iterations(self) -> int:
        return max(r.iterations for r in self._results)

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self._results)

    @property
    def frame_bounds(self) -> FrameBounds | None:
        """The first input's bounds (the same operator for every input of a conv layer)."""
        return self._results[0].frame_bounds

    @property
    def injective(self) -> bool | None:
        flags = [r.injective for r in self._results]
        if any(f is False for f in flags):
            return False
        return None if any(f is None for f in flags) else True

    @property
    def stopping(self) -> dict[str, Any]:
        """The batch's stopping record (for LSMR: the worst stop reason over the inputs)."""
        return self._stopping if self._stopping is not None else self._results[0].stopping

    @functools.cached_property
    def relative_residual(self) -> float:
        """$\\|AX - Z\\|_F / \\|Z\\|_F$ over the whole batch."""
        if self._batch_residual is not None:
            return self._batch_residual()
        num = sum((r.relative_residual * float(np.linalg.norm(r.z))) ** 2 for r in self._results)
        den = sum(float(np.linalg.norm(r.z)) ** 2 for r in self._results)
        return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))

    def error_bound(self) -> float:
        """`cond * relative_residual` of the batch; `inf` unless every input is injective."""
        if not self.injective or self.frame_bounds is None:
            return float("inf")
        return self.frame_bounds.cond * self.relative_residual

    def __repr__(self) -> str:
        return f"InversionBatch({len(self)} results, solver={self.solver!r})"


__all__ = ["InversionBatch", "InversionResult"]
