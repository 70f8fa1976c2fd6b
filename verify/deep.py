"""Deep reconstruction experiments: random/trained stacks, the optimisation baseline, metrics.

The mathematics (forward pass with switches, stage-by-stage inverse) is in
:mod:`theory.deep`; this module builds the stacks used by the claims and by
``crelu reconstruct``, and runs the Mahendran-Vedaldi-style optimisation baseline.

Trained weights (safetensors) use this key layout: ``stage1.weight``, ``stage2.weight``, ...
each of shape ``(K_l, C_l, k, k)`` with ``C_1 = 3`` (RGB) and ``C_{l+1} = 2 K_l`` (the CReLU
stack's input at stage ``l+1``); ``conv1.weight``, ``conv2.weight``, ... are accepted as
well, and so is the layout of the project's trained CNNs (``verify.models``: the 4-dimensional
``body.N.weight`` tensors in order of N). Biases are ignored (the stacks are bias-free).
Padding is ``(k-1)//2`` at every stage.
The ReLU stack built from the same weights uses, at stage ``l+1``, the first ``K_l`` input
channels of each filter (the channels that multiply the positive CReLU half).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from theory.conv import ConvLayer
from theory.checks import NotConvergedWarning
from theory.deep import Stage, deep_forward, invert_deep



def stage_widths(stages: int, first: int = 16, factor: int = 14) -> tuple[int, ...]:
    """Filters per stage of the random stack: ``first``, then ``factor`` x the previous.

    A stage with ``2K`` input channels (CReLU) has ``8K`` unknowns per 2x2 pooling window of
    its output and measures at most ``2 K'`` of them; on photos about 45% of the pooled
    CReLU units are 0 (non-negative inputs give every filter a mean response of one sign),
    so ``K' = 8K`` (the earlier choice) gives barely more measurements than unknowns
    (1.1x) and a condition number that grows with the image (LSMR did not finish stage 2
    of the 512x512 photo in 16 minutes). ``factor = 14`` gives about 1.9x and a
    well-conditioned frame (docs/theory/maxpool.md, "Deep stacks"). The first stage has
    ``first`` filters on ``in_channels * 9`` coefficients (1.4x for RGB).
    """
    if stages < 1:
        raise ValueError(f"the stack needs at least one stage, got {stages}")
    widths = [first]
    for _ in range(stages - 1):
        widths.append(factor * widths[-1])
    return tuple(widths)


#: Default random architecture (filters per stage); 3x3 kernels, padding 1.
DEFAULT_WIDTHS = stage_widths(2)
#: Where ``--weights trained`` looks (written by the trained-filters work, verify/weights/).
TRAINED_CANDIDATES = ("crelu_stack.safetensors", "crelu-cifar10.safetensors",
                      "crelu-fashion-mnist.safetensors")
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def random_bank(rng: np.random.Generator, filters: int, channels: int, kernel: int = 3
                ) -> np.ndarray:
    """A random filter bank with orthonormal filters (rows of a random orthogonal matrix).

    For ``filters > channels * kernel**2`` the columns are orthonormal instead, scaled so
    that the filters have unit average squared norm. Gaussian draws orthonormalised by QR.
    """
    dim = channels * kernel * kernel
    g = rng.standard_normal((filters, dim))
    if filters <= dim:
        q, _ = np.linalg.qr(g.T)
        w = q.T
    else:
        q, _ = np.linalg.qr(g)
        w = q * np.sqrt(dim / filters)
    return w.reshape(filters, channels, kernel, kernel)


def random_weights(rng: np.random.Generator, in_channels: int = 3,
                   widths: Sequence[int] = DEFAULT_WIDTHS, kernel: int = 3) -> list[np.ndarray]:
    """Random weights of a CReLU stack: stage ``l+1`` has ``2 K_l`` input channels."""
    weights, c = [], in_channels
    for k in widths:
        weights.append(random_bank(rng, k, c, kernel))
        c = 2 * k
    return weights


def load_weights(path: str | Path) -> list[np.ndarray]:
    """Stage weights from a safetensors file (key layout in the module docstring)."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    out = []
    for prefix in ("stage", "conv"):
        i = 1
        while f"{prefix}{i}.weight" in tensors:
            out.append(np.asarray(tensors[f"{prefix}{i}.weight"], dtype=np.float64))
            i += 1
        if out:
            break
    if not out:  # verify.models layout: body.<N>.weight, conv weights are the 4-D ones
        body = sorted((int(k.split(".")[1]), v) for k, v in tensors.items()
                      if k.startswith("body.") and k.endswith(".weight")
                      and k.split(".")[1].isdigit() and np.ndim(v) == 4)
        out = [np.asarray(v, dtype=np.float64) for _, v in body]
    if not out:
        raise ValueError(f"{path} has no 'stage1.weight' (or 'conv1.weight') tensor; keys: "
                         f"{sorted(tensors)[:10]}")
    for i, w in enumerate(out):
        if w.ndim != 4:
            raise ValueError(f"stage {i + 1} weight has shape {w.shape}; expected (K, C, k, k)")
        if i and w.shape[1] != 2 * out[i - 1].shape[0]:
            raise ValueError(f"stage {i + 1} has {w.shape[1]} input channels; the CReLU stack "
                             f"needs 2 * {out[i - 1].shape[0]}")
    return out


def trained_weights_path() -> Path:
    """The trained stack weights in verify/weights/, or a clear FileNotFoundError."""
    for name in TRAINED_CANDIDATES:
        if (WEIGHTS_DIR / name).is_file():
            return WEIGHTS_DIR / name
    raise FileNotFoundError(
        f"no trained weights in {WEIGHTS_DIR} (looked for {', '.join(TRAINED_CANDIDATES)}); "
        "they come from the project's training code. Use --weights random, or --weights PATH "
        "to a safetensors file with keys stage1.weight, stage2.weight, ...")


def build_stacks(weights: Sequence[np.ndarray], pool: int = 2, padding: int | None = None
                 ) -> tuple[list[Stage], list[Stage]]:
    """CReLU and ReLU stacks from CReLU-stack weights (see the module docstring)."""
    crelu, relu = [], []
    for i, w in enumerate(weights):
        pad = (w.shape[-1] - 1) // 2 if padding is None else padding
        crelu.append(Stage(ConvLayer(w, padding=pad), pool))
        wr = w if i == 0 else w[:, : weights[i - 1].shape[0]]
        relu.append(Stage(ConvLayer(np.ascontiguousarray(wr), padding=pad), pool))
    return crelu, relu


# ---------------------------------------------------------------------------- metrics
def psnr(x: np.ndarray, ref: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of ``x`` clipped to [0, peak] against ``ref`` (``inf`` if identical)."""
    mse = float(np.mean((np.clip(x, 0, peak) - ref) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)


def relative_error(x: np.ndarray, ref: np.ndarray) -> float:
    """``||x - ref|| / ||ref||`` (unclipped); the absolute error ``||x||`` when ``ref`` is
    all zero (no relative error exists; callers say so)."""
    norm = float(np.linalg.norm(ref))
    diff = float(np.linalg.norm(x - ref))
    return diff / norm if norm > 0 else diff


# ---------------------------------------------------------------------------- baseline
def _torch_forward(x: torch.Tensor, stages: Sequence[Stage], activation: str) -> torch.Tensor:
    u = x
    for st in stages:
        z = st.layer.forward(u)  # the layer's own geometry: stride, padding (mode), dilation
        if activation == "crelu":
            u = torch.cat([torch.relu(z), torch.relu(-z)], 1)
        else:
            u = torch.relu(z)
        if st.pool > 1:
            u = F.max_pool2d(u, st.pool, stride=st.pool)
    return u


def tv(x: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Smoothed isotropic total variation, mean over pixels of sqrt(dx^2 + dy^2 + delta^2)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return torch.sqrt(dx ** 2 + dy ** 2 + delta ** 2).mean()


def optimisation_inversion(target: np.ndarray, stages: Sequence[Stage], input_shape,
                           activation: str = "crelu", steps: int = 300, lr: float = 0.02,
                           lam_tv: float = 0.01, seed: int = 0,
                           callback: Callable[[int], None] | None = None,
                           max_seconds: float | None = None,
                           stats: dict | None = None) -> np.ndarray:
    """Mahendran & Vedaldi (CVPR 2015) style inversion by optimisation, no switches.

    Minimises :math:`\\|\\Phi(x) - \\Phi_0\\|^2 / \\|\\Phi_0\\|^2 + \\lambda_{TV} R_{TV}(x)`
    over :math:`x \\in [0, 1]^D` (projected Adam, float32), where :math:`\\Phi` is the stack's
    forward pass (conv, activation, max-pool) and :math:`R_{TV}` the smoothed total
    variation. Start: mid-grey plus small seeded noise. ``lam_tv``, ``lr`` and ``steps`` are
    fixed in advance, not tuned on the test image. ``max_seconds``: stop after the step
    that passes this wall time (a budget; at least one step), at most ``steps`` steps;
    ``stats`` (a dict) receives ``steps`` (taken) and ``seconds``.
    """
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    x = (0.5 + 0.01 * torch.randn(1, *input_shape, generator=gen)).requires_grad_(True)
    phi0 = torch.from_numpy(np.asarray(target, dtype=np.float32))[None]
    # relative feature loss; features that are all zero (a black image) have no relative
    # scale, and the loss is then the absolute one
    norm0 = torch.clamp(phi0.pow(2).sum(), min=1.0) if not phi0.any() else phi0.pow(2).sum()
    f32 = [Stage(st.layer.with_weight(st.layer.weight.float()), st.pool) for st in stages]
    opt = torch.optim.Adam([x], lr=lr)
    taken = 0
    for it in range(steps):
        if taken and max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
            break   # (at least one step: a baseline of no step shows nothing)
        opt.zero_grad()
        loss = (_torch_forward(x, f32, activation) - phi0).pow(2).sum() / norm0 + lam_tv * tv(x)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        taken += 1
        if callback is not None:
            callback(it)
    if stats is not None:
        stats.update(steps=taken, seconds=time.perf_counter() - t0)
    return x.detach()[0].double().numpy()


@dataclasses.dataclass
class MethodResult:
    """One reconstruction: image, PSNR (dB), relative error, seconds, notes."""

    name: str
    x: np.ndarray
    psnr: float
    relative_error: float
    seconds: float
    info: dict


def reconstruct_all(image: np.ndarray, weights: Sequence[np.ndarray], pool: int = 2,
                    baseline_steps: int = 300, methods: Sequence[str] = ("crelu", "relu",
                                                                         "optimisation"),
                    progress: Callable[..., None] | None = None, tol: float = 1e-10,
                    maxiter: int | None = 3000, certify: bool = False,
                    budget: bool = False) -> list[MethodResult]:
    """Reconstruct ``image`` (3, H, W) in [0, 1] from its deep features by each method.

    ``crelu``: stage-by-stage exact inverse of the CReLU stack with switches. ``relu``: the
    same algorithm on the ReLU stack. ``optimisation``: the baseline, on the CReLU stack's
    features (no switches). ``tol`` is LSMR's ``atol = btol`` and ``maxiter`` its cap per
    stage; ``certify`` computes every stage's frame bounds (slow at image size). Each
    stage's ``is_frame`` (certified, or ``None``), ``converged`` and reason are in ``info``.

    ``budget=True`` (the CLI's default): the other columns cost no more than the CReLU
    column (which runs first). The ReLU projection's iterations are capped per stage at
    the CReLU column's iterations of that stage times the ratio of the two stages' input
    channels (an iteration costs about ``K C k^2`` per position: a ReLU stage above the
    first has half the channels), without retries; the optimisation
    baseline runs until the CReLU column's wall time has passed (at most
    ``baseline_steps`` steps). Every result's ``info["forward_units"]`` is its time in
    units of one forward pass of the CReLU stack (``deep_forward``, timed in the same
    run, ``info["unit_seconds"]``).
    """
    crelu_stages, relu_stages = build_stacks(weights, pool)
    with solver_environment():
        return _reconstruct_all(image, crelu_stages, relu_stages, baseline_steps, methods,
                                progress, tol, maxiter, certify, budget)


class solver_environment:  # noqa: N801 - used as a context manager, like a function
    """Process settings for long LSMR solves on a shared CPU; restored on exit.

    * LSMR's vector operations (norms, axpy) run with single-threaded BLAS: on a shared
      machine a threaded BLAS on 10^5-10^6-long vectors is several times *slower*
      (oversubscription). Torch's conv threads are untouched.
    * glibc only: large buffers (the conv outputs and unfolded inputs of every operator
      application, 10^2 MB each at 512x512) are taken from the heap instead of fresh
      ``mmap`` pages, which the kernel zero-fills on first touch at every allocation. One
      stage-2 operator application of the 512x512 astronaut stack: 0.43-0.44 s plain,
      0.30-0.35 s inside (``python benchmarks/deep_conditioning.py --allocator plain|env``,
      three alternating runs each, 2 cores). Restored to glibc's defaults on exit.
    """

    _M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4

    def __enter__(self):
        import contextlib

        self._stack = contextlib.ExitStack()
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
            pass
        else:
            self._stack.enter_context(threadpool_limits(1, user_api="blas"))
        self._libc = _glibc()
        if self._libc is not None:
            self._libc.mallopt(self._M_MMAP_MAX, 0)
            self._libc.mallopt(self._M_TRIM_THRESHOLD, 2 ** 31 - 1)
        return self

    def __exit__(self, *exc):
        if self._libc is not None:  # glibc's defaults (mallopt(3))
            self._libc.mallopt(self._M_MMAP_MAX, 65536)
            self._libc.mallopt(self._M_TRIM_THRESHOLD, 128 * 1024)
        self._stack.close()
        return False


def _glibc():
    """The running glibc (ctypes), or None on other C libraries and platforms."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover
        return None


def _frame_reason(r) -> str:
    """Why a stage is (not) a frame, in words."""
    if r.is_frame is None:
        return "not certified"
    if r.frame_bounds is not None:
        return f"lower frame bound {r.frame_bounds.lower:.3g} ({r.frame_bounds.method})"
    if r.n_selected < r.x.size:
        return f"{r.n_selected} measurements for {r.x.size} unknowns"
    return "an input value that no selected filter touches"


def _reconstruct_all(image, crelu_stages, relu_stages, baseline_steps, methods, progress, tol,
                     maxiter, certify=False, budget=False):
    out = []
    t0 = time.perf_counter()
    deep_forward(image, crelu_stages, "crelu")
    unit = time.perf_counter() - t0           # one forward pass of the CReLU stack
    spent: dict[str, float] = {}
    crelu_iters = None
    for name in methods:
        t0 = time.perf_counter()
        extra: dict = {}
        if name in ("crelu", "relu"):
            stages = crelu_stages if name == "crelu" else relu_stages
            cap, retries = maxiter, 1
            if name == "relu" and budget and crelu_iters is not None:
                # an iteration costs about K * C * k^2 per position: the ReLU stage's is
                # cheaper by C_crelu / C_relu (2 above the first stage)
                cap = [max(1, int(k * (c.layer.in_channels / r.layer.in_channels)))
                       for k, c, r in zip(crelu_iters, crelu_stages, relu_stages)]
                retries = 0
                extra = {"capped_at": cap}
            fwd = deep_forward(image, stages, name)
            with warnings.catch_warnings():   # reported per stage in info, not as warnings
                warnings.simplefilter("ignore", NotConvergedWarning)
                res = invert_deep(
                    fwd.last, fwd.switches, stages, image.shape, name, atol=tol, btol=tol,
                    maxiter=cap, retries=retries, certify=certify,
                    callback=((lambda i, r, n=name: progress(f"{n} stage {i}"))
                              if progress else None),
                    iteration_callback=((lambda i, k, n=name: progress(f"{n} s{i} it {k}", 0))
                                        if progress else None))
            x = res.x
            info = {"stages": [{"stage": len(stages) - j, "n_selected": r.n_selected,
                                "zero_window_rows": r.n_zero_window,
                                "unknowns": int(np.prod(r.x.shape)),
                                "iterations": r.iterations,
                                "cond_estimate": r.cond_estimate,
                                "relative_residual": r.relative_residual,
                                "stop": r.stopping.get("reason", ""),
                                "is_frame": r.is_frame, "converged": r.converged,
                                "solver": r.solver,
                                "why": _frame_reason(r)}
                               for j, r in enumerate(res.stages)],
                    "end_to_end": res.checks, **extra}
            if name == "crelu":   # first stage first
                crelu_iters = [r.iterations for r in reversed(res.stages)]
        elif name == "optimisation":
            fwd = deep_forward(image, crelu_stages, "crelu")
            limit = None
            if budget and "crelu" in spent:
                limit = max(spent["crelu"] - (time.perf_counter() - t0), 0.0)
            stats: dict = {}
            x = optimisation_inversion(fwd.last, crelu_stages, image.shape, "crelu",
                                       steps=baseline_steps, max_seconds=limit, stats=stats,
                                       callback=(lambda it: progress("optimisation step"))
                                       if progress else None)
            info = {"steps": stats["steps"], "max_steps": baseline_steps,
                    "budget_seconds": None if limit is None else spent["crelu"],
                    "lam_tv": 0.01, "lr": 0.02}
        else:
            raise ValueError(f"unknown method {name!r}")
        sec = time.perf_counter() - t0
        spent[name] = sec
        info.update(forward_units=sec / unit, unit_seconds=unit)
        out.append(MethodResult(name, x, psnr(x, image), relative_error(x, image), sec, info))
    return out
