"""Invariance scores of hidden units (Goodfellow, Le, Saxe, Lee, Ng, NIPS 2009).

The paper (Shang et al. 2016, Sec. 4.2) compares ReLU and CReLU networks with the invariance
score of Goodfellow et al.: a unit *fires* when its response exceeds a threshold chosen so
that it fires on a fixed small fraction of natural inputs (the global firing rate); its local
firing rate is how often it still fires on transformed versions (translations, in-plane
rotations, scalings) of the inputs that excite it most; the score is the ratio of the two.

Everything here is pure computation: a unit is any function of an image batch (for a CNN, a
channel of one layer at one spatial position), a transformation is any function from an
image batch to an image batch of the same shape. `translation`, `rotation` and
`scaling` (and the plural helpers) build the usual ones with `torch` (integer shifts;
`affine_grid` / `grid_sample` for rotations and scalings).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]
UnitFunction = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]

__all__ = [
    "FiringThresholds", "InvarianceScores", "Transform", "bootstrap_layer_scores",
    "firing_thresholds", "invariance_scores", "layer_score", "rotation", "rotations",
    "scaling", "scalings", "translation", "translations",
]


# ----------------------------------------------------------------------------- validation
def _check_rate(rate: float, name: str = "rate") -> float:
    rate = float(rate)
    if not (0.0 < rate < 1.0):
        raise ValueError(f"{name} must lie in the open interval (0, 1); got {rate}")
    return rate


def _check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not (0.0 < fraction <= 1.0):
        raise ValueError(f"top_fraction must lie in (0, 1]; got {fraction}")
    return fraction


def _as_responses(responses: np.ndarray | torch.Tensor, what: str = "responses") -> np.ndarray:
    if isinstance(responses, torch.Tensor):
        responses = responses.detach().cpu().numpy()
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (inputs, units); got shape {r.shape}")
    if r.shape[1] == 0:
        raise ValueError(f"{what} has no units (shape {r.shape})")
    if r.shape[0] == 0:
        raise ValueError(f"{what} has no inputs (shape {r.shape})")
    if not np.isfinite(r).all():
        raise ValueError(f"{what} contain NaN or Inf")
    return r


def _n_firing(n_inputs: int, rate: float) -> int:
    k = int(math.floor(rate * n_inputs + 0.5))
    if k < 1:
        raise ValueError(f"a firing rate of {rate} needs at least {math.ceil(0.5 / rate)} natural "
                         f"inputs (so that at least one input fires); got {n_inputs}")
    if k >= n_inputs:
        raise ValueError(f"a firing rate of {rate} with {n_inputs} inputs leaves no input below "
                         "the threshold; lower the rate or add inputs")
    return k


# ----------------------------------------------------------------------------- thresholds
@dataclasses.dataclass(frozen=True)
class FiringThresholds:
    """Per-unit thresholds and the firing rates they give on the natural inputs.

    Attributes
    ----------
    threshold : (U,) a unit fires on `x` iff `h(x) > threshold`
    global_rate : (U,) the empirical global firing rate `G` (`<= n_firing / N`)
    n_firing : the number of inputs each unit should fire on, `round(rate * N)`
    rate : the nominal global firing rate

    Examples
    --------
    >>> import numpy as np
    >>> from theory.invariance import firing_thresholds
    >>> r = np.arange(100.0)[:, None] * np.array([[1.0, -1.0]])     # 100 inputs, 2 units
    >>> thr = firing_thresholds(r, rate=0.05)
    >>> thr.n_firing, thr.threshold.tolist(), thr.global_rate.tolist()
    (5, [94.0, -5.0], [0.05, 0.05])
    """

    threshold: np.ndarray
    global_rate: np.ndarray
    n_firing: int
    rate: float


def firing_thresholds(responses: np.ndarray | torch.Tensor, rate: float = 0.01) -> FiringThresholds:
    """Thresholds so that each unit fires on a fraction `rate` of the natural inputs.

    Parameters
    ----------
    responses : (N, U) responses of U units to N natural inputs
    rate : nominal global firing rate, in (0, 1) (Goodfellow et al.: 0.01)

    Returns
    -------
    FiringThresholds

    Notes
    -----
    With $k = \\operatorname{round}(\\text{rate}\\cdot N)$ and the responses of unit
    $i$ sorted decreasingly, $v_1 \\ge \\dots \\ge v_N$, the threshold is
    $t_i = v_{k+1}$ and the unit fires on $x$ iff $h_i(x) > t_i$. Its
    global firing rate $G(i) = \\#\\{n : h_i(x_n) > t_i\\}/N$ equals $k/N$ when
    $v_k > v_{k+1}$ and is smaller when responses tie at the threshold (a ReLU unit that
    is positive on fewer than $k$ inputs has $t_i = 0$).

    Examples
    --------
    >>> import numpy as np
    >>> from theory.invariance import firing_thresholds
    >>> r = np.random.default_rng(0).standard_normal((1000, 3))
    >>> thr = firing_thresholds(r, rate=0.01)
    >>> thr.n_firing, thr.global_rate.tolist()                # fires on exactly 10 of 1000
    (10, [0.01, 0.01, 0.01])
    >>> relu = np.maximum(r, 0)
    >>> relu[:, 0] = 0.0                                       # a dead unit never fires
    >>> firing_thresholds(relu, rate=0.01).global_rate.tolist()
    [0.0, 0.01, 0.01]
    """
    r = _as_responses(responses)
    rate = _check_rate(rate)
    k = _n_firing(r.shape[0], rate)
    ordered = -np.sort(-r, axis=0)
    threshold = ordered[k]
    global_rate = (r > threshold).mean(axis=0)
    return FiringThresholds(threshold, global_rate, k, rate)


# ----------------------------------------------------------------------------- scores
def layer_score(scores: np.ndarray, top_fraction: float = 0.2) -> float:
    """Mean of the top `top_fraction` of the finite unit scores (Goodfellow et al.: 20 %).

    Notes
    -----
    With $U'$ finite scores sorted decreasingly, the layer score is the mean of the first
    $m = \\lceil \\text{top\\_fraction}\\cdot U' \\rceil$ of them. NaN scores (units
    that could not be thresholded) are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.invariance import layer_score
    >>> scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, np.nan])
    >>> layer_score(scores)                                    # mean of the top 20 %: 10 and 9
    9.5
    >>> layer_score(scores, top_fraction=1.0)                  # NaN (unscored) units left out
    5.5
    """
    top_fraction = _check_fraction(top_fraction)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D; got shape {s.shape}")
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no unit has a finite invariance score (no units, or none fires)")
    m = max(1, int(math.ceil(top_fraction * s.size - 1e-9)))
    return float(np.sort(s)[::-1][:m].mean())


@dataclasses.dataclass
class InvarianceScores:
    """Per-unit invariance scores of one set of units under one set of transformations.

    Attributes
    ----------
    threshold, global_rate : (U,) see `firing_thresholds`
    top_inputs : (U, n_top) indices of the natural inputs that excite each unit most
    local_firing : (U, n_top) for each unit and top input, the fraction of the transformed
        versions of that input on which the unit fires
    local_rate : (U,) `L`, the mean of `local_firing` over the top inputs
    score : (U,) `S = L / G`; NaN for units that are not scored (`valid` False)
    valid : (U,) the unit's global rate reached at least `min_rate_fraction * rate`
    rate, top_fraction : the parameters used

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from theory.invariance import invariance_scores, translations
    >>> rng = np.random.default_rng(0)
    >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
    >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
    ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
    >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
    >>> res.n_units, res.top_inputs.shape, res.global_rate.tolist()
    (2, (2, 20), [0.05, 0.05])
    >>> np.round(res.score, 6).tolist()     # brightness: shift-invariant, scores 1/G = 20
    [20.0, 1.25]
    >>> res.valid.tolist(), round(res.layer_score, 6)
    ([True, True], 20.0)
    """

    threshold: np.ndarray
    global_rate: np.ndarray
    top_inputs: np.ndarray
    local_firing: np.ndarray
    local_rate: np.ndarray
    score: np.ndarray
    valid: np.ndarray
    rate: float
    top_fraction: float

    @property
    def n_units(self) -> int:
        """Number of units scored (`U`).

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from theory.invariance import invariance_scores, translations
        >>> rng = np.random.default_rng(0)
        >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
        >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
        ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
        >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
        >>> res.n_units
        2
        """
        return int(self.score.shape[0])

    @property
    def layer_score(self) -> float:
        """Mean score of the top `top_fraction` of the valid units.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from theory.invariance import invariance_scores, translations
        >>> rng = np.random.default_rng(0)
        >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
        >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
        ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
        >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
        >>> round(res.layer_score, 6)            # top 20 % of 2 units: the best one
        20.0
        """
        return layer_score(self.score, self.top_fraction)

    def select(self, units: slice | Sequence[int] | np.ndarray) -> "InvarianceScores":
        """The scores of a subset of the units (e.g. one layer of a concatenated set).

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from theory.invariance import invariance_scores, translations
        >>> rng = np.random.default_rng(0)
        >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
        >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
        ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
        >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
        >>> one = res.select([0])
        >>> one.n_units, round(float(one.score[0]), 6)
        (1, 20.0)
        >>> res.select(slice(1, 2)).top_inputs.shape
        (1, 20)
        """
        pick = (lambda a: a[units]) if isinstance(units, slice) else \
            (lambda a: a[np.asarray(units)])
        return dataclasses.replace(
            self, threshold=pick(self.threshold), global_rate=pick(self.global_rate),
            top_inputs=pick(self.top_inputs), local_firing=pick(self.local_firing),
            local_rate=pick(self.local_rate), score=pick(self.score), valid=pick(self.valid))

    @property
    def max_score(self) -> np.ndarray:
        """(U,) the largest score each unit can reach, `1 / G`.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from theory.invariance import invariance_scores, translations
        >>> rng = np.random.default_rng(0)
        >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
        >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
        ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
        >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
        >>> np.round(res.max_score, 6).tolist()  # 1 / G: reached only by exact invariance
        [20.0, 20.0]
        >>> bool(np.all(res.score <= res.max_score))
        True
        """
        with np.errstate(divide="ignore"):
            return np.where(self.valid, 1.0 / self.global_rate, np.nan)


def _to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("no natural images given")
    if not x.is_floating_point():
        x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or Inf")
    return x


def _evaluate(units: UnitFunction, x: torch.Tensor, batch_size: int,
              n_units: int | None, what: str) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            r = units(xb)
            r = r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
            if r.ndim != 2 or r.shape[0] != xb.shape[0]:
                raise ValueError(f"the unit function must return (batch, units); got shape "
                                 f"{r.shape} for a batch of {xb.shape[0]} {what}")
            if n_units is not None and r.shape[1] != n_units:
                raise ValueError(f"the unit function returned {r.shape[1]} units on {what}, "
                                 f"{n_units} on the natural images")
            out.append(r.astype(np.float64, copy=False))
    return _as_responses(np.concatenate(out), f"responses to {what}")


def invariance_scores(units: UnitFunction, images: np.ndarray | torch.Tensor,
                      transforms: Sequence[Transform], rate: float = 0.01,
                      n_top: int | None = None, top_fraction: float = 0.2,
                      min_rate_fraction: float = 0.5, batch_size: int = 500) -> InvarianceScores:
    """Invariance scores of every unit (Goodfellow, Le, Saxe, Lee, Ng 2009).

    Parameters
    ----------
    units : maps an image batch (B, C, H, W) to the responses (B, U) of U units
    images : (N, C, H, W) natural inputs; they set the thresholds and supply the top inputs
    transforms : non-empty sequence of functions (B, C, H, W) -> (B, C, H, W), e.g.
        `translations`, `rotations`, `scalings`
    rate : global firing rate that sets the thresholds, in (0, 1) (default 1 %)
    n_top : how many of the most exciting natural inputs to transform per unit (default:
        those the unit fires on, `round(rate * N)`)
    top_fraction : fraction of the best units averaged in the layer score (default 20 %)
    min_rate_fraction : a unit is scored only if its empirical global rate is at least this
        fraction of `rate` (ties at the threshold can make it fire less often)
    batch_size : images per call of `units`

    Returns
    -------
    InvarianceScores

    Raises
    ------
    ValueError
        No units, no images, NaN/Inf in images or responses, `rate` outside (0, 1), an
        empty transformation set, a transformation that changes the image shape, too few
        images for the rate, `n_top` out of range.

    Notes
    -----
    Unit $i$ fires on $x$ iff $h_i(x) > t_i$ (`firing_thresholds`);
    $G(i)$ is its firing rate on the natural inputs. With $Z_i$ the `n_top`
    natural inputs of largest $h_i$ and $T$ the transformations,

    $$
    L(i) = \\frac{1}{|Z_i|}\\sum_{z \\in Z_i} \\frac{1}{|T|}\\sum_{\\tau \\in T}
           \\mathbf 1[h_i(\\tau z) > t_i], \\qquad S(i) = \\frac{L(i)}{G(i)}.
    $$

    Hence $0 \\le S(i) \\le 1/G(i)$; the maximum is reached by a unit that is exactly
    invariant to every $\\tau$ (its top inputs fire, and so do their transforms), and
    $S(i) \\approx 1$ means the unit fires near its preferred inputs no more often than
    at random. The layer score is `layer_score` of the valid units.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from theory.invariance import invariance_scores, translations
    >>> rng = np.random.default_rng(0)
    >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
    >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
    ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
    >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
    >>> bool(np.isclose(res.score[0], res.max_score[0]))    # invariant unit: the maximum
    True
    >>> bool(res.score[1] < 0.5 * res.max_score[1])          # pixel unit: far from invariant
    True
    >>> np.round(res.local_rate, 6).tolist()
    [1.0, 0.0625]
    """
    x = _to_tensor(images)
    rate = _check_rate(rate)
    top_fraction = _check_fraction(top_fraction)
    transforms = list(transforms)
    if not transforms:
        raise ValueError("the transformation set is empty; give at least one transformation")
    if not (0.0 < min_rate_fraction <= 1.0):
        raise ValueError(f"min_rate_fraction must lie in (0, 1]; got {min_rate_fraction}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    natural = _evaluate(units, x, batch_size, None, "natural images")
    n, u = natural.shape
    thr = firing_thresholds(natural, rate)
    n_top = thr.n_firing if n_top is None else int(n_top)
    if not (1 <= n_top <= n):
        raise ValueError(f"n_top must lie in 1..{n} (the number of images); got {n_top}")
    # top inputs per unit: largest responses, ties broken by index (stable)
    top = np.argsort(-natural, axis=0, kind="stable")[:n_top].T            # (U, n_top)
    union = np.unique(top)
    position = np.full(n, -1)
    position[union] = np.arange(union.size)
    sub = x[torch.as_tensor(union)]
    fired = np.zeros((union.size, u))
    for k, tau in enumerate(transforms):
        moved = tau(sub)
        if not isinstance(moved, torch.Tensor) or tuple(moved.shape) != tuple(sub.shape):
            shape = tuple(moved.shape) if hasattr(moved, "shape") else type(moved).__name__
            raise ValueError(f"transformation {k} must map a (B, C, H, W) tensor to one of the "
                             f"same shape {tuple(sub.shape)}; got {shape}")
        resp = _evaluate(units, moved, batch_size, u, f"transformed images (transformation {k})")
        fired += resp > thr.threshold
    fired /= len(transforms)                                               # (M, U)
    local_firing = fired[position[top], np.arange(u)[:, None]]            # (U, n_top)
    local_rate = local_firing.mean(axis=1)
    valid = thr.global_rate >= min_rate_fraction * rate
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(valid, local_rate / thr.global_rate, np.nan)
    return InvarianceScores(thr.threshold, thr.global_rate, top, local_firing, local_rate, score,
                            valid, rate, top_fraction)


def bootstrap_layer_scores(result: InvarianceScores, rng: np.random.Generator,
                           reps: int = 1000, units: bool = True,
                           images: bool = True) -> np.ndarray:
    """Bootstrap draws of the layer score, resampling units and/or each unit's top inputs.

    Parameters
    ----------
    result : `invariance_scores` output
    rng : numpy generator
    reps : number of bootstrap draws
    units : resample the valid units with replacement
    images : resample, for every drawn unit, its top inputs with replacement

    Returns
    -------
    numpy.ndarray
        Shape `(reps,)`: the bootstrapped layer scores.

    Notes
    -----
    Two-stage (hierarchical) bootstrap: draw $U'$ valid units with replacement; for each
    drawn unit $i$ draw $|Z_i|$ of its top inputs with replacement and recompute
    $L^*(i)$ as the mean of their local firing fractions; $S^*(i) = L^*(i)/G(i)$;
    the draw is the top-`top_fraction` mean of the $S^*$. The thresholds (hence
    $G$) are held fixed, i.e. the interval is conditional on the natural image set.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from theory.invariance import invariance_scores, translations
    >>> rng = np.random.default_rng(0)
    >>> images = torch.as_tensor(rng.random((400, 1, 8, 8)))
    >>> def units(x):                       # unit 0: total brightness; unit 1: one pixel
    ...     return torch.stack([x.sum(dim=(1, 2, 3)), x[:, 0, 2, 2]], dim=1)
    >>> res = invariance_scores(units, images, translations(1, mode="circular"), rate=0.05)
    >>> from theory.invariance import bootstrap_layer_scores
    >>> draws = bootstrap_layer_scores(res, np.random.default_rng(0), reps=200)
    >>> draws.shape
    (200,)
    >>> lo, hi = np.quantile(draws, [0.025, 0.975])
    >>> bool(lo <= res.layer_score <= hi)
    True
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}")
    idx_valid = np.flatnonzero(result.valid)
    if idx_valid.size == 0:
        raise ValueError("no valid units to bootstrap")
    lf = result.local_firing[idx_valid]
    g = result.global_rate[idx_valid]
    uv, k = lf.shape
    m = max(1, int(math.ceil(result.top_fraction * uv - 1e-9)))
    out = np.empty(reps)
    chunk = max(1, 2_000_000 // max(1, uv * k))
    for start in range(0, reps, chunk):
        r = min(chunk, reps - start)
        iu = rng.integers(0, uv, size=(r, uv)) if units else np.broadcast_to(np.arange(uv), (r, uv))
        if images:
            ii = rng.integers(0, k, size=(r, uv, k))
            loc = lf[iu[..., None], ii].mean(axis=2)
        else:
            loc = lf[iu].mean(axis=2)
        s = loc / g[iu]
        s = -np.sort(-s, axis=1)[:, :m]
        out[start:start + r] = s.mean(axis=1)
    return out


# ----------------------------------------------------------------------------- transformations
def translation(dx: int, dy: int, mode: str = "zeros") -> Transform:
    """Shift images by `dx` columns (right) and `dy` rows (down).

    `mode="zeros"` fills the uncovered border with 0; `"circular"` wraps around (exact
    for units that are functions of the whole periodic image).

    Examples
    --------
    >>> import torch
    >>> from theory.invariance import translation
    >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
    >>> translation(1, 0)(x)[0, 0]                              # one column right, zeros in
    tensor([[0., 0., 1.],
            [0., 3., 4.],
            [0., 6., 7.]])
    >>> translation(0, 1, mode="circular")(x)[0, 0]             # one row down, wrapped
    tensor([[6., 7., 8.],
            [0., 1., 2.],
            [3., 4., 5.]])
    >>> translation(1, 0).__name__
    'translate(1,0,zeros)'
    """
    dx, dy = int(dx), int(dy)
    if mode not in ("zeros", "circular"):
        raise ValueError(f"mode must be 'zeros' or 'circular'; got {mode!r}")

    def shift(x: torch.Tensor) -> torch.Tensor:
        if mode == "circular":
            return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        h, w = x.shape[-2:]
        out = torch.zeros_like(x)
        if abs(dx) >= w or abs(dy) >= h:
            return out
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[..., yd, xd] = x[..., ys, xs]
        return out

    shift.__name__ = f"translate({dx},{dy},{mode})"
    return shift


def _affine(matrix: np.ndarray, name: str, padding_mode: str) -> Transform:
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"padding_mode must be zeros, border or reflection; got {padding_mode!r}")

    def apply(x: torch.Tensor) -> torch.Tensor:
        theta = torch.as_tensor(matrix, dtype=x.dtype).unsqueeze(0).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode,
                             align_corners=False)

    apply.__name__ = name
    return apply


def rotation(degrees: float, padding_mode: str = "zeros") -> Transform:
    """In-plane rotation about the image centre (bilinear, `affine_grid`/`grid_sample`).

    Examples
    --------
    >>> import torch
    >>> from theory.invariance import rotation
    >>> x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    >>> x[0, 0, 2, 4] = 1.0                                     # a pixel right of the centre
    >>> y = rotation(90)(x)
    >>> y.shape, divmod(int(y.argmax()), 5)                     # a quarter turn: to the top
    (torch.Size([1, 1, 5, 5]), (0, 2))
    >>> bool(torch.allclose(rotation(0)(x), x))
    True
    """
    a = math.radians(float(degrees))
    c, s = math.cos(a), math.sin(a)
    return _affine(np.array([[c, -s, 0.0], [s, c, 0.0]]), f"rotate({degrees})", padding_mode)


def scaling(factor: float, padding_mode: str = "zeros") -> Transform:
    """Zoom about the centre by `factor` (> 1 enlarges the content, < 1 shrinks it).

    Examples
    --------
    >>> import torch
    >>> from theory.invariance import scaling
    >>> x = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    >>> round(float(scaling(0.5)(x).sum()), 6)                  # shrunk to the centre, zeros around
    9.0
    >>> bool(torch.allclose(scaling(1.0)(x), x))
    True
    >>> try:
    ...     scaling(0.0)
    ... except ValueError as err:
    ...     print(err)
    scaling factor must be positive and finite; got 0.0
    """
    factor = float(factor)
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"scaling factor must be positive and finite; got {factor}")
    return _affine(np.array([[1 / factor, 0.0, 0.0], [0.0, 1 / factor, 0.0]]),
                   f"scale({factor})", padding_mode)


def translations(max_shift: int = 3, mode: str = "zeros") -> list[Transform]:
    """Horizontal and vertical shifts by 1..max_shift pixels in both directions (4 * max_shift).

    Examples
    --------
    >>> from theory.invariance import translations
    >>> shifts = translations(2)
    >>> len(shifts), [t.__name__ for t in shifts[:2]]
    (8, ['translate(1,0,zeros)', 'translate(-1,0,zeros)'])
    """
    if max_shift < 1:
        raise ValueError(f"max_shift must be >= 1; got {max_shift}")
    out = []
    for d in range(1, max_shift + 1):
        out += [translation(d, 0, mode), translation(-d, 0, mode),
                translation(0, d, mode), translation(0, -d, mode)]
    return out


def rotations(angles: Sequence[float] = (-30, -20, -10, 10, 20, 30),
              padding_mode: str = "zeros") -> list[Transform]:
    """In-plane rotations by the given angles (degrees).

    Examples
    --------
    >>> from theory.invariance import rotations
    >>> [t.__name__ for t in rotations()]
    ['rotate(-30)', 'rotate(-20)', 'rotate(-10)', 'rotate(10)', 'rotate(20)', 'rotate(30)']
    >>> len(rotations([-15, 15], padding_mode="border"))
    2
    """
    if len(angles) == 0:
        raise ValueError("no rotation angles given")
    return [rotation(a, padding_mode) for a in angles]


def scalings(factors: Sequence[float] = (0.8, 0.9, 1.1, 1.25),
             padding_mode: str = "zeros") -> list[Transform]:
    """Scalings by the given factors.

    Examples
    --------
    >>> from theory.invariance import scalings
    >>> [t.__name__ for t in scalings()]
    ['scale(0.8)', 'scale(0.9)', 'scale(1.1)', 'scale(1.25)']
    """
    if len(factors) == 0:
        raise ValueError("no scaling factors given")
    return [scaling(f, padding_mode) for f in factors]
