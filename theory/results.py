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

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((2, 8, 8))
    >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
    >>> res.solver, res.converged, res.injective
    ('fft', True, True)
    >>> bool(np.allclose(res.x, x)), res.z.shape                 # z: the pre-activation A x
    (True, (4, 8, 8))
    >>> res.frame_bounds.method, bool(res.relative_residual < res.checks["residual_tolerance"])
    ('fft', True)
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
        """$\\|A x - z\\| / \\|z\\|$, computed on first access (not part of the timing).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 8, 8))
        >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
        >>> z = layer.forward(x)
        >>> direct = np.linalg.norm(layer.forward(res.x) - z) / np.linalg.norm(z)
        >>> bool(abs(res.relative_residual - direct) < 1e-12), bool(res.relative_residual < 1e-12)
        (True, True)
        """
        return self._residual()

    @property
    def method(self) -> str:
        """Deprecated name of `solver`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 8, 8))
        >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     name = res.method
        >>> name, caught[0].category.__name__
        ('fft', 'DeprecationWarning')
        """
        warnings.warn("InversionResult.method is deprecated; use .solver", DeprecationWarning,
                      stacklevel=2)
        return self.solver

    def error_bound(self) -> float:
        """A-posteriori bound `cond * relative_residual` on the relative error.

        `inf` when the operator is not certified injective.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 8, 8))
        >>> res = invert_crelu(crelu_features(x, layer), layer, x.shape)
        >>> error = np.linalg.norm(res.x - x) / np.linalg.norm(x)
        >>> bool(error <= res.error_bound()), bool(res.error_bound() < 1e-12)
        (True, True)
        """
        if self.frame_bounds is None or not self.frame_bounds.injective:
            return float("inf")
        return self.frame_bounds.cond * self.relative_residual


class InversionBatch(Sequence[InversionResult]):
    """The results of a batch, one per input, with batch-level summaries.

    Index or iterate it for the per-input results; `x` stacks their reconstructions.
    The summaries cover the whole batch: `iterations` (the largest), `converged` (all),
    `relative_residual` (of the stacked system), `error_bound()`.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, crelu_features, invert_crelu
    >>> rng = np.random.default_rng(0)
    >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
    >>> x = rng.standard_normal((3, 2, 8, 8))
    >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
    >>> len(batch), batch.x.shape, batch.solver
    (3, (3, 2, 8, 8), 'fft')
    >>> [bool(np.allclose(r.x, xi)) for r, xi in zip(batch, x)]
    [True, True, True]
    >>> batch.converged, batch.injective, bool(batch.error_bound() < 1e-12)
    (True, True, True)
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
        """The reconstructions of the batch, stacked: `(N, C, H, W)`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> batch.x.shape, bool(np.allclose(batch.x, x))
        ((3, 2, 8, 8), True)
        """
        return np.stack([r.x for r in self._results])

    @functools.cached_property
    def z(self) -> np.ndarray:
        """The measurements of the batch, stacked (for CReLU: the pre-activations).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> batch.z.shape, bool(np.allclose(batch.z, layer.forward(x)))
        ((3, 4, 8, 8), True)
        """
        return np.stack([r.z for r in self._results])

    @property
    def solver(self) -> str:
        """The solver every input of the batch was solved with.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> batch.solver
        'fft'
        """
        return self._results[0].solver

    @property
    def method(self) -> str:
        """Deprecated name of `solver`.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     name = batch.method
        >>> name, caught[0].category.__name__
        ('fft', 'DeprecationWarning')
        """
        warnings.warn("InversionBatch.method is deprecated; use .solver", DeprecationWarning,
                      stacklevel=2)
        return self.solver

    @property
    def iterations(self) -> int:
        """The largest iteration count over the batch (0 for direct solvers).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 2, 4, 4))
        >>> h = crelu_features(x, layer)
        >>> invert_crelu(h, layer, (2, 4, 4)).iterations                   # fft: direct
        0
        >>> lsmr = invert_crelu(h, layer, (2, 4, 4), solver="lsmr")
        >>> lsmr.iterations == max(r.iterations for r in lsmr), lsmr.iterations > 0
        (True, True)
        """
        return max(r.iterations for r in self._results)

    @property
    def converged(self) -> bool:
        """Whether every input's solve met its stopping rule.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 2, 4, 4))
        >>> h = crelu_features(x, layer)
        >>> invert_crelu(h, layer, (2, 4, 4)).converged
        True
        >>> capped = invert_crelu(h, layer, (2, 4, 4), solver="lsmr", maxiter=2,
        ...                       on_not_converged="ignore", on_inconsistent="ignore",
        ...                       precondition="none")
        >>> capped.converged
        False
        """
        return all(r.converged for r in self._results)

    @property
    def frame_bounds(self) -> FrameBounds | None:
        """The first input's bounds (the same operator for every input of a conv layer).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> fb = batch.frame_bounds
        >>> fb.method, fb.exact, fb is batch[2].frame_bounds
        ('fft', True, True)
        """
        return self._results[0].frame_bounds

    @property
    def injective(self) -> bool | None:
        """Whether every input is certified injective.

        `False` if any input is certified non-injective, else `None` if one has no certificate.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 2, 8, 8))
        >>> h = crelu_features(x, layer)
        >>> invert_crelu(h, layer, (2, 8, 8)).injective
        True
        >>> print(invert_crelu(h, layer, (2, 8, 8), certify=False).injective)   # no certificate
        None
        """
        flags = [r.injective for r in self._results]
        if any(f is False for f in flags):
            return False
        return None if any(f is None for f in flags) else True

    @property
    def stopping(self) -> dict[str, Any]:
        """The batch's stopping record (for LSMR: the worst stop reason over the inputs).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((2, 2, 4, 4))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 4, 4), solver="lsmr")
        >>> batch.stopping["solver"], batch.stopping["reason"]
        ('scipy.sparse.linalg.lsmr', 'Ax - b is small enough, given atol, btol')
        """
        return self._stopping if self._stopping is not None else self._results[0].stopping

    @functools.cached_property
    def relative_residual(self) -> float:
        """$\\|AX - Z\\|_F / \\|Z\\|_F$ over the whole batch.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> z = layer.forward(x)
        >>> direct = np.linalg.norm(layer.forward(batch.x) - z) / np.linalg.norm(z)
        >>> bool(abs(batch.relative_residual - direct) < 1e-12)
        True
        """
        if self._batch_residual is not None:
            return self._batch_residual()
        num = sum((r.relative_residual * float(np.linalg.norm(r.z))) ** 2 for r in self._results)
        den = sum(float(np.linalg.norm(r.z)) ** 2 for r in self._results)
        return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))

    def error_bound(self) -> float:
        """`cond * relative_residual` of the batch; `inf` unless every input is injective.

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, crelu_features, invert_crelu
        >>> rng = np.random.default_rng(0)
        >>> layer = ConvLayer(rng.standard_normal((4, 2, 3, 3)), padding=1, padding_mode="circular")
        >>> x = rng.standard_normal((3, 2, 8, 8))
        >>> batch = invert_crelu(crelu_features(x, layer), layer, (2, 8, 8))
        >>> error = np.linalg.norm(batch.x - x) / np.linalg.norm(x)
        >>> bool(error <= batch.error_bound()), bool(batch.error_bound() < 1e-12)
        (True, True)
        """
        if not self.injective or self.frame_bounds is None:
            return float("inf")
        return self.frame_bounds.cond * self.relative_residual

    def __repr__(self) -> str:
        return f"InversionBatch({len(self)} results, solver={self.solver!r})"


__all__ = ["InversionBatch", "InversionResult"]
