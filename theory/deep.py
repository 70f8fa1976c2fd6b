r"""Deep stacks conv -> CReLU (or ReLU) -> max-pool, inverted stage by stage with switches.

Notes
-----
A stack of stages $u_{l} = \operatorname{pool}_{p_l}(\sigma(A_l u_{l-1}))$,
$u_0 = x$, with $\sigma$ = CReLU or ReLU. Given the last features
$u_L$ and every stage's switches, invert from the top: stage $l$ recovers
$u_{l-1}$ from $u_l$ with `theory.pooling.invert_crelu_maxpool`. If every
stage's selected filters form a frame, each step is exact and so is the whole inverse; the
relative errors then compound at most as
$\epsilon_{l-1} \le \kappa_l(\epsilon_l + \rho_l)$ with $\rho_l$ the
relative residual of stage $l$'s solve.

A recovered intermediate $u_{l-1}$ carries the previous solve's error, so its zero
entries come back as small numbers of either sign. Entries at most
$\tau = \max(\text{zero\_tol\_rel}\cdot\max|u|,\; c\,\kappa\rho\,\|u\|_2)$ are
set to zero before stage $l-1$ selects its filters, where $\kappa\rho$ bounds
the relative 2-norm error of the previous solve ($\kappa$ from the frame bounds, or
LSMR's own estimate, a lower estimate, hence `c = zero_tol_factor = 10`; with Jacobi
preconditioning LSMR estimates $\operatorname{cond}(W_xM)$, and
$\|x'-x\| \le \operatorname{cond}(W_xM)\operatorname{cond}(M)\,\rho\,\|x\|$, so the
estimate is multiplied by the spread of the column norms). Since
$\|u'-u\|_\infty \le \|u'-u\|_2$, no true zero survives when $\kappa$ is
right; the price is that true values below $\tau$ are dropped (a dropped value only
removes an equation; a spurious one would add a false equation). This needs the previous
stage solved accurately (small $\rho$): with a loose LSMR tolerance $\tau$
swallows most features. Negative entries are clipped to 0 (pooled rectified features are
non-negative).
`pool = 1` gives a stack without
pooling (Proposition 2.1 stage by stage).

*Known biases.* A stage $u_l = \operatorname{pool}(\sigma(A_lu_{l-1} + \beta_l))$ with
a known $\beta_l$ (`Stage.bias`) has the same selected rows: a selected unit's value is
$\pm((A_lu)_{k,j} + \beta_{l,k})$, so the bias only shifts the right-hand side
(`theory.selection.MaxPoolSelection.rhs`) and every step above holds unchanged.

*Per-stage tolerance and warm starts.* The data of stage $l-1$ carry stage $l$'s error,
about $\kappa_l\rho_l$ relative at most; with `adaptive_tol` its solve stops at
$\max(\mathrm{btol}, c\,\kappa_l\rho_l)$ instead of running into CGLS's stagnation stop
when that error is larger than `btol` (off by default: the bound is pessimistic). A stage
stopped by its iteration cap goes on from its last iterate (`retries`). Within one
top-down pass nothing else carries over: each stage's unknowns are new, and its Jacobi
scaling depends on the image through the selection.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Literal, Sequence

import numpy as np

from theory.checks import NotConvergedError, NotConvergedWarning, check_policy, report
from theory.conv import ConvLayer, as_tensor
from theory.features import Activation, check_bias, conv_crelu_maxpool
from theory.pooling import PoolInversionResult, invert_crelu_maxpool
from theory.selection import pooled_shape


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: a conv layer followed by the activation and `pool x pool` max-pooling.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage
    >>> st = Stage(ConvLayer(np.ones((4, 1, 3, 3)), padding=1))
    >>> st.pool, st.layer.out_channels
    (2, 4)
    >>> Stage(st.layer, pool=1).pool                        # no pooling: Proposition 2.1
    1
    >>> Stage(st.layer, bias=[0.1, 0, 0, -0.2]).bias         # a known bias (trained layers)
    array([ 0.1,  0. ,  0. , -0.2])
    """

    layer: ConvLayer
    pool: int = 2
    bias: np.ndarray | None = None

    def __post_init__(self):
        # a known conv bias, z = A u + beta: checked once here (length K, finite)
        object.__setattr__(self, "bias", check_bias(self.bias, self.layer))


@dataclasses.dataclass
class DeepFeatures:
    """Forward pass of a stack: every stage's pooled features, switches and input shape.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
    >>> rng = np.random.default_rng(0)
    >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
    >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
    >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    >>> x = rng.random((1, 4, 4))
    >>> fwd = deep_forward(x, stages)
    >>> [f.shape for f in fwd.features], fwd.input_shapes
    ([(18, 2, 2), (324, 1, 1)], [(1, 4, 4), (18, 2, 2)])
    >>> [s.shape for s in fwd.switches] == [f.shape for f in fwd.features]
    True
    """

    features: list[np.ndarray]
    switches: list[np.ndarray]
    input_shapes: list[tuple[int, int, int]]
    activation: str

    @property
    def last(self) -> np.ndarray:
        """The last stage's pooled features (what `invert_deep` starts from).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
        >>> rng = np.random.default_rng(0)
        >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
        >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
        >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
        >>> x = rng.random((1, 4, 4))
        >>> fwd = deep_forward(x, stages)
        >>> fwd.last.shape, fwd.last is fwd.features[-1]
        ((324, 1, 1), True)
        """
        return self.features[-1]


def _check_stages(stages: Sequence[Stage]) -> list[Stage]:
    stages = list(stages)
    if not stages:
        raise ValueError("the stack has no stages")
    for i, st in enumerate(stages):
        if not isinstance(st, Stage):
            raise TypeError(f"stage {i} must be a theory.deep.Stage, got {type(st).__name__}")
    return stages


def stack_shapes(stages: Sequence[Stage], input_shape: Sequence[int],
                 activation: Activation = "crelu") -> list[tuple[int, int, int]]:
    """Input shape of every stage, then the final feature shape (length `len(stages) + 1`).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage
    >>> from theory.deep import stack_shapes
    >>> stages = [Stage(ConvLayer(np.ones((4, 1, 3, 3)), padding=1)),
    ...           Stage(ConvLayer(np.ones((6, 8, 3, 3)), padding=1))]
    >>> stack_shapes(stages, (1, 16, 16))                   # CReLU doubles the channels
    [(1, 16, 16), (8, 8, 8), (12, 4, 4)]
    >>> stack_shapes(stages[:1], (1, 16, 16), activation="relu")
    [(1, 16, 16), (4, 8, 8)]
    """
    shapes = [tuple(int(s) for s in input_shape)]
    for i, st in enumerate(_check_stages(stages)):
        try:
            shapes.append(pooled_shape(st.layer, shapes[-1], st.pool, activation))
        except ValueError as exc:
            raise ValueError(f"stage {i + 1}: {exc}") from exc
    return shapes  # type: ignore[return-value]


def deep_forward(x: np.ndarray, stages: Sequence[Stage],
                 activation: Activation = "crelu") -> DeepFeatures:
    """Run `x` (shape (C, H, W)) through the stack, keeping every stage's switches.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
    >>> rng = np.random.default_rng(0)
    >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
    >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
    >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    >>> x = rng.random((1, 4, 4))
    >>> fwd = deep_forward(x, stages)
    >>> fwd.activation, fwd.last.shape
    ('crelu', (324, 1, 1))
    >>> bool((fwd.last >= 0).all())                         # pooled rectified features
    True
    """
    stages = _check_stages(stages)
    u = as_tensor(x, "x").double().numpy()
    if u.ndim != 3:
        raise ValueError(f"x must be one image (C, H, W), got shape {u.shape}")
    shapes = stack_shapes(stages, u.shape, activation)
    feats, sws = [], []
    for st in stages:
        u, s = conv_crelu_maxpool(u, st.layer, st.pool, activation, bias=st.bias)
        feats.append(u)
        sws.append(s)
    return DeepFeatures(feats, sws, shapes[:-1], activation)


@dataclasses.dataclass
class DeepInversionResult:
    """Stage-by-stage inversion: the image and each stage's `PoolInversionResult`.

    `stages[0]` is the *last* stage (inverted first). `checks` holds the end-to-end
    check: the reconstruction forwarded through the stack, its relative mismatch with the
    given last features (`feature_mismatch`) and the fraction of each stage's switches it
    reproduces (`switch_agreement`, first stage first). Measured and reported; without
    per-stage certificates no tolerance follows from the theory, so nothing is warned.

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
    >>> rng = np.random.default_rng(0)
    >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
    >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
    >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    >>> x = rng.random((1, 4, 4))
    >>> fwd = deep_forward(x, stages)
    >>> res = invert_deep(fwd.last, fwd.switches, stages, x.shape, certify=True)
    >>> len(res.stages), res.all_frames, bool(np.allclose(res.x, x))
    (2, True, True)
    >>> res.checks["switch_agreement"], bool(res.checks["feature_mismatch"] < 1e-10)
    ([1.0, 1.0], True)
    """

    x: np.ndarray
    stages: list[PoolInversionResult]
    seconds: float
    checks: dict = dataclasses.field(default_factory=dict)

    @property
    def all_frames(self) -> bool | None:
        """Whether every stage's selected filters are certified a frame.

        `False` if a stage's are certified not to be one, else `None` if a stage has no
        certificate (`invert_deep` with `certify=False`, its default).

        Examples
        --------
        >>> import numpy as np
        >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
        >>> rng = np.random.default_rng(0)
        >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
        >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
        >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
        >>> x = rng.random((1, 4, 4))
        >>> fwd = deep_forward(x, stages)
        >>> res = invert_deep(fwd.last, fwd.switches, stages, x.shape, certify=True)
        >>> res.all_frames, [r.is_frame for r in res.stages]
        (True, [True, True])
        """
        flags = [r.is_frame for r in self.stages]
        if any(f is False for f in flags):
            return False
        return None if any(f is None for f in flags) else True


def invert_deep(
    features: np.ndarray, switches: Sequence[np.ndarray], stages: Sequence[Stage],
    input_shape: Sequence[int], activation: Activation = "crelu",
    inverse: Literal["exact", "linear"] = "exact", *, certify: bool | str = False,
    zero_tol_rel: float = 1e-9, zero_tol_factor: float = 10.0,
    atol: float = 1e-14, btol: float = 1e-14, precondition: str = "jacobi",
    zero_windows: bool = True,
    maxiter: int | Sequence[int | None] | None = None,
    solver: Literal["auto", "dense", "lsmr", "cgls"] = "auto",
    precision: Literal["auto", "float64", "mixed"] = "auto",
    adaptive_tol: bool = False, retries: int = 1,
    on_not_converged: Literal["warn", "raise", "ignore"] = "warn",
    callback: Callable[[int, PoolInversionResult], None] | None = None,
    iteration_callback: Callable[[int, int], None] | None = None,
) -> DeepInversionResult:
    """Invert a stack from its last features and all switches, back to the image.

    Parameters
    ----------
    features : array
        The last stage's pooled features (`DeepFeatures.last`).
    switches : list of arrays
        Every stage's switches, first stage first (`DeepFeatures.switches`).
    stages : list of Stage
    input_shape : (C, H, W) of the image
    activation : {"crelu", "relu"}
    inverse : {"exact", "linear"}
        Passed to every stage (`linear` needs frame bounds: set `certify`).
    certify : bool or str
        Frame-bound method per stage (see `MaxPoolSelection.frame_bounds`; `True`:
        `auto`); `False` (the default) skips them (image-size stacks: the smallest
        eigenvalue is expensive).
    zero_tol_rel, zero_tol_factor : float
        Thresholds below which a recovered intermediate feature counts as zero (module
        notes).
    atol, btol, maxiter : the stopping rule of every stage (`invert_crelu_maxpool`);
        `maxiter` may be a list, one cap per stage (first stage first).
    solver, precision : passed to every stage (`invert_crelu_maxpool`; `auto`: CGLS
        above `theory.pooling.AUTO_DENSE_POOLED` unknowns).
    adaptive_tol : bool
        Below the last stage, stop each solve at
        $\\mathrm{btol}_{l-1} = \\max(\\mathrm{btol},\\ c\\,\\kappa_l\\rho_l)$ (`c` =
        `zero_tol_factor`; module notes): its data carry the error of the stage above,
        about $\\kappa_l\\rho_l$ relative at most, and no $x$ fits them better than
        their error. Off by default: the bound is pessimistic (the Ritz estimate of
        $\\kappa$ times the spread of the Jacobi scaling), and on the two-stage tests the
        fixed `btol` reached a 10-100 times smaller error for 1.2-2.5 times the stage-1
        iterations (`tests/test_deep.py`); CGLS's stagnation stop ends a solve whose rule
        is out of reach. Reported per stage in `stopping["btol"]`.
    retries : int
        A stage stopped by its iteration cap is solved again from its last iterate (a warm
        start, `x0` of `invert_crelu_maxpool`), up to `retries` times; the iterations add
        up in `iterations`.
    on_not_converged : {"warn", "raise", "ignore"}
        For a stage whose solve did not converge (after its retries).
    precondition : {"jacobi", "none", "auto"}
        LSMR's column scaling at every stage (see `invert_crelu_maxpool`). Jacobi by
        default: it leaves the solution of a frame unchanged, still returns 0 on every
        coordinate no selected filter touches, and halves the iterations next to regions of
        exactly zero input.
    zero_windows : bool
        Use CReLU's zero windows at every stage (`theory.pooling.selection`).
    callback : callable(stage_number, result), optional
        Called after each stage (1-based stage number, last stage first): progress hooks.
    iteration_callback : callable(stage_number, iteration), optional
        Called after every LSMR iteration of every stage.

    Returns
    -------
    DeepInversionResult

    Examples
    --------
    >>> import numpy as np
    >>> from theory import ConvLayer, Stage, deep_forward, invert_deep
    >>> rng = np.random.default_rng(0)
    >>> w1 = np.linalg.qr(rng.standard_normal((9, 9)))[0].reshape(9, 1, 3, 3)
    >>> w2 = np.linalg.qr(rng.standard_normal((162, 162)))[0].reshape(162, 18, 3, 3)
    >>> stages = [Stage(ConvLayer(w1, padding=1)), Stage(ConvLayer(w2, padding=1))]
    >>> x = rng.random((1, 4, 4))
    >>> fwd = deep_forward(x, stages)
    >>> res = invert_deep(fwd.last, fwd.switches, stages, x.shape)
    >>> bool(np.abs(res.x - x).max() < 1e-8)                 # back through both stages
    True
    >>> [r.solver for r in res.stages]                      # last stage first
    ['dense', 'dense']
    """
    t0 = time.perf_counter()
    stages = _check_stages(stages)
    check_policy(on_not_converged, "on_not_converged")
    if int(retries) < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    caps = list(maxiter) if isinstance(maxiter, (list, tuple)) else [maxiter] * len(stages)
    if len(caps) != len(stages):
        raise ValueError(f"maxiter has {len(caps)} entries for {len(stages)} stages")
    if len(switches) != len(stages):
        raise ValueError(f"got {len(switches)} switch arrays for {len(stages)} stages")
    shapes = stack_shapes(stages, input_shape, activation)
    u = as_tensor(features, "features").double().numpy()
    if u.shape != shapes[-1]:
        raise ValueError(f"features have shape {u.shape}; the stack's last stage gives "
                         f"{shapes[-1]}")
    results: list[PoolInversionResult] = []
    for i in range(len(stages) - 1, -1, -1):
        st = stages[i]
        tol, zeroed = 0.0, 0
        if results:  # u was reconstructed: clip, and zero what is below its accuracy
            prev = results[-1]
            fb = prev.frame_bounds
            if fb is not None and np.isfinite(fb.cond):
                kappa = fb.cond
            else:  # LSMR's estimate of cond(W_x M), times cond(M) of its Jacobi scaling
                est = prev.cond_estimate
                kappa = ((est if np.isfinite(est) else 1.0)
                         * prev.stopping.get("scale_spread", 1.0))
            u = np.maximum(u, 0.0)
            tol = max(zero_tol_rel * float(u.max(initial=0.0)),
                      zero_tol_factor * kappa * prev.relative_residual * float(np.linalg.norm(u)))
            before = int(np.count_nonzero(u))
            u = np.where(u > tol, u, 0.0)
            zeroed = before - int(np.count_nonzero(u))
            if before and zeroed == before and prev.converged:   # else reported above
                report(f"stage {i + 1}: the zero threshold {tol:.3g} (from stage {i + 2}'s "
                       f"relative residual {prev.relative_residual:.3g} and condition "
                       f"estimate {kappa:.3g}) is above every one of the {before} recovered "
                       f"features: stage {i + 2} was not solved accurately enough to "
                       "go on (nothing is left to invert; tighten atol/btol)",
                       on_not_converged, NotConvergedWarning, NotConvergedError)
        stage_btol = btol
        if results and adaptive_tol:
            stage_btol = max(btol, zero_tol_factor * kappa * results[-1].relative_residual)
        kw = dict(certify=certify, atol=atol, btol=stage_btol, maxiter=caps[i], zero_tol=tol,
                  on_non_injective="ignore",
                  # intermediate features are reconstructions: their small inconsistency
                  # is expected; the whole stack is checked end to end below
                  on_inconsistent="ignore", on_not_converged="ignore",
                  precondition=precondition, zero_windows=zero_windows, solver=solver,
                  precision=precision, bias=st.bias,
                  iteration_callback=None if iteration_callback is None else
                  (lambda k, n=i + 1: iteration_callback(n, k)))
        res = invert_crelu_maxpool(u, switches[i], st.layer, shapes[i], st.pool, inverse,
                                   activation, **kw)
        tries, spent = 0, res.iterations
        while (tries < retries and res.solver == "cgls"
               and res.stopping.get("istop") == 7):   # the cap: go on from the last iterate
            tries += 1
            res = invert_crelu_maxpool(u, switches[i], st.layer, shapes[i], st.pool, inverse,
                                       activation, **kw, x0=res.x)
            spent += res.iterations
        if tries:
            res.iterations = spent
            res.stopping["retries"] = tries
        if results:   # what the threshold above removed (module notes)
            res.stopping["zero_threshold"] = tol
            res.stopping["zeroed_below_threshold"] = zeroed
        if not res.converged:
            report(f"stage {i + 1}: the pooled solve did not converge: "
                   f"{res.stopping.get('reason', '?')} after {res.iterations} iterations "
                   f"(relative residual {res.relative_residual:.3e}, btol {stage_btol:.1e})",
                   on_not_converged, NotConvergedWarning, NotConvergedError)
        results.append(res)
        if callback is not None:
            callback(i + 1, res)
        u = res.x
    seconds = time.perf_counter() - t0
    return DeepInversionResult(x=u, stages=results, seconds=seconds,
                               checks=_end_to_end(u, features, switches, stages, activation))


def _end_to_end(x: np.ndarray, features: np.ndarray, switches, stages, activation) -> dict:
    """Forward the reconstruction through the stack: last-feature mismatch and the fraction
    of pooling switches it reproduces (1 and ~0 for an exact inverse up to ties)."""
    fwd = deep_forward(x, stages, activation)
    last = np.asarray(features, dtype=np.float64)
    norm = float(np.linalg.norm(last))
    mismatch = float(np.linalg.norm(fwd.last - last) / norm) if norm > 0 else float(
        np.linalg.norm(fwd.last))
    agree = [float(np.mean(np.asarray(a) == np.asarray(b)))
             for a, b in zip(fwd.switches, switches)]
    return {"feature_mismatch": mismatch, "switch_agreement": agree}


__all__ = ["DeepFeatures", "DeepInversionResult", "Stage", "deep_forward", "invert_deep",
           "stack_shapes"]
