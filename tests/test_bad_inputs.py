"""The bad-input catalogue: every case gives a clear error, a warning, or the correct answer.

Each case is one call with bad input or a fault, and its expectation:

* ``Raises(type, fragment)``: that exception type, with a message that names the problem;
* ``Warns(type, fragment)``: the call returns, with that warning (the answer is flagged);
* ``Correct(check)``: the call returns, no warning of this package, and ``check(result)``.

The same table is evaluated against older versions of the package by a script outside the
test suite (see the closing notes of issue 11), which classifies each outcome as a clear
error, a correct answer, an unclear error or a silent wrong answer.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable

import numpy as np
import pytest
import torch

import theory
from theory import ConvLayer, crelu, frame_bounds, invert_crelu, pairing
from theory import rademacher as rad
from theory.checks import InconsistentFeaturesWarning, NotConvergedWarning
from theory.deep import Stage, deep_forward, invert_deep
from theory.inversion import NonInjectiveError, NonInjectiveWarning
from theory.pooling import crelu_maxpool, invert_crelu_maxpool
from theory.testing import orthonormal_bank

EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass
class Raises:
    type: type
    fragment: str


@dataclasses.dataclass
class Warns:
    type: type
    fragment: str


@dataclasses.dataclass
class Correct:
    check: Callable[[Any], bool]


@dataclasses.dataclass
class Exits:
    """A ``crelu`` command line exits with ``code`` and prints ``fragment`` (on stdout or
    stderr), and never ``forbid`` (e.g. "nan")."""

    code: int
    fragment: str
    forbid: str | None = None


def _cli(*argv):
    """Run ``crelu ARGV``; return (exit code, stdout + stderr)."""
    import contextlib
    import io

    from verify import cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:          # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code or 0), buf.getvalue()


def _cli_files():
    """Small test images and weights for the command-line cases (written once)."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    d = Path(tempfile.mkdtemp(prefix="crelu-bad-"))
    rng = _rng(4)
    Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(d / "rgb.png")
    Image.fromarray((np.arange(256).reshape(16, 16) * 200).astype(np.uint16)).save(d / "g16.png")
    Image.fromarray((rng.random((16, 16)) * 255).astype(np.uint8)).save(d / "grey.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(d / "black.png")
    (d / "text.png").write_text("not an image")
    from safetensors.numpy import save_file

    save_file({"stage1.weight": np.zeros((16, 3, 3, 3))}, str(d / "zero.safetensors"))
    big = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(big).save(d / "rgb32.png")
    (d / "afile").write_text("x")
    return d


_FILES = None


def _files():
    global _FILES
    if _FILES is None:
        _FILES = _cli_files()
    return _FILES


def _recon(image, *extra):
    d = _files()
    return _cli("reconstruct", d / image, "--out", d / "out.png", "--no-progress",
                "--stages", "1", "--baseline-steps", "0", *extra)


# ---------------------------------------------------------------------------- fixtures
def _rng(seed=0):
    return np.random.default_rng(seed)


def _feats(x, layer):
    return crelu(np.asarray(layer.forward(x)), axis=x.ndim - 3)


def _circ(k=8, c=2, seed=0, scale=1.0):
    return ConvLayer(scale * _rng(seed).standard_normal((k, c, 3, 3)), padding=1,
                     padding_mode="circular")


def _x(c=2, h=10, seed=1):
    return _rng(seed).standard_normal((c, h, h))


def _pool_case(scale=1.0):
    layer = ConvLayer(scale * orthonormal_bank(_rng(0), 9, 1, 3), padding=1)
    x = _rng(1).random((1, 8, 8))
    f, s = crelu_maxpool(x, layer, 2)
    return layer, x, f, s


def _wrong_switch(s):
    s = s.copy()
    v = s[0, 0, 0]
    s[0, 0, 0] = v + 1 if v % 2 == 0 else v - 1   # the other column of the same window
    return s


def _near_parallel(delta):
    w = _rng(0).standard_normal((1, 2, 3, 3))
    return ConvLayer(np.concatenate([w, w + delta * _rng(5).standard_normal(w.shape)]),
                     padding=1, padding_mode="circular")


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def _mutated_weights():
    w = _rng(0).standard_normal((8, 2, 3, 3))
    layer = ConvLayer(w, padding=1, padding_mode="circular")
    fresh = frame_bounds(layer, (2, 8, 8))
    w[:] = 0.0  # the caller's array changes; the layer must not
    return layer, fresh


def _stale_ok(_):
    layer, fresh = _mutated_weights()
    x = _x(h=8)
    res = invert_crelu(_feats(x, layer), layer, x.shape)
    return (np.abs(layer.forward(x)).max() > 0 and frame_bounds(layer, (2, 8, 8)) == fresh
            and _rel(res.x, x) < 1e-12)


def _weight_copy_ok(_):
    layer = _circ()
    before = layer.forward(_x())
    layer.weight.zero_()          # a copy: the layer is unchanged
    return np.array_equal(layer.forward(_x()), before)


def _scaled_bounds(scale):
    w = np.eye(4).reshape(4, 4, 1, 1) + 0.1 * _rng(0).standard_normal((4, 4, 1, 1))
    return frame_bounds(ConvLayer(scale * w, padding_mode="circular"), (4, 6, 6))


def _scaled_inverse(scale, solver):
    w = np.eye(4).reshape(4, 4, 1, 1) + 0.1 * _rng(0).standard_normal((4, 4, 1, 1))
    layer = ConvLayer(scale * w, padding_mode="circular")
    x = _rng(1).standard_normal((4, 6, 6))
    return _rel(invert_crelu(_feats(x, layer), layer, x.shape, solver).x, x)


def _opposite_pair(scale):
    w = _rng(0).standard_normal((1, 9))
    return pairing(scale * np.concatenate([w, -w])).mu


def _fft_cond(delta):
    layer = _near_parallel(delta)
    x = _x(h=12)
    fb = frame_bounds(layer, x.shape, "dense")
    res = invert_crelu(_feats(x, layer), layer, x.shape, "fft")
    return _rel(res.x, x) <= theory.recovery_tolerance(layer, fb)


def _other_layer_features():
    a, b = _circ(seed=0), _circ(seed=3)
    x = _x()
    return _feats(x, b), a, x.shape


def _invalid_bounds():
    layer = ConvLayer(_rng(0).standard_normal((8, 2, 3, 3)), padding=1)
    x = _x()
    small = dataclasses.replace(frame_bounds(layer, x.shape), upper=1.0)  # b far too small
    return _feats(x, layer), layer, x.shape, small


def _relu_only(x, layer):
    h = _feats(x, layer)
    h[..., h.shape[-3] // 2:, :, :] = 0.0
    return h


def _both_halves(x, layer):
    h = _feats(x, layer)
    h[..., h.shape[-3] // 2:, :, :] += 0.1
    return h


def _stack():
    w1 = orthonormal_bank(_rng(2), 12, 1, 3)
    return [Stage(ConvLayer(w1, padding=1), 2)]


# ---------------------------------------------------------------------------- the table
X = _x()
C = _circ()
PL, PX, PF, PS = _pool_case()
CASES: dict[str, tuple[Callable[[], Any], Any]] = {
    # activations
    "crelu-uint8": (lambda: crelu(np.array([[1, 2, 0]], np.uint8), axis=1),
                    Correct(lambda r: r.tolist() == [[1, 2, 0, 0, 0, 0]])),
    "crelu-uint8-torch": (lambda: crelu(torch.tensor([[1, 2, 0]], dtype=torch.uint8)),
                          Correct(lambda r: r.tolist() == [[1, 2, 0, 0, 0, 0]])),
    "crelu-int8-min": (lambda: crelu(np.array([[-128, 5]], np.int8), axis=1),
                       Raises(OverflowError, "no negation")),
    "crelu-int16": (lambda: crelu(np.array([[3, -4]], np.int16), axis=1),
                    Correct(lambda r: r.tolist() == [[3, 0, 0, 4]])),
    "crelu-bool": (lambda: crelu(np.array([[True, False]])), Raises(TypeError, "real numeric")),
    "crelu-complex": (lambda: crelu(np.array([[1 + 1j]])), Raises(TypeError, "real numeric")),
    "crelu-list": (lambda: crelu([[1.0, -1.0]]), Raises(TypeError, "numpy array or torch")),
    "crelu-axis": (lambda: crelu(np.ones((2, 3)), axis=5), Raises(ValueError, "out of range")),
    "split-odd": (lambda: theory.split_crelu(np.ones((1, 3, 2, 2))),
                  Raises(ValueError, "even number")),
    "avr-int": (lambda: theory.avr(np.array([3, -4], np.int16)),
                Correct(lambda r: r.tolist() == [3, 4])),
    # the conv layer
    "stride-fraction": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), stride=(1.5, 1.5)),
                        Raises(TypeError, "int")),
    "stride-float": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), stride=2.0),
                     Raises(TypeError, "int")),
    "stride-bool": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), stride=True),
                    Raises(TypeError, "int")),
    "stride-zero": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), stride=0),
                    Raises(ValueError, "stride must be >= 1")),
    "padding-negative": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), padding=-1),
                         Raises(ValueError, "padding must be >= 0")),
    "dilation-zero": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), dilation=0),
                      Raises(ValueError, "dilation must be >= 1")),
    "weight-3d": (lambda: ConvLayer(np.ones((2, 3, 3))), Raises(ValueError, "4 dimensions")),
    "weight-nan": (lambda: ConvLayer(np.full((1, 1, 3, 3), np.nan)), Raises(ValueError, "NaN")),
    "weight-empty": (lambda: ConvLayer(np.ones((0, 1, 3, 3))), Raises(ValueError, "empty")),
    "weight-complex": (lambda: ConvLayer(np.ones((1, 1, 3, 3), complex)),
                       Raises(TypeError, "real")),
    "weight-bool": (lambda: ConvLayer(np.ones((1, 1, 3, 3), bool)), Raises(TypeError, "real")),
    "padding-mode": (lambda: ConvLayer(np.ones((1, 1, 3, 3)), padding_mode="reflect"),
                     Raises(ValueError, "padding_mode")),
    "stale-certificate": (lambda: None, Correct(_stale_ok)),
    "weight-view-is-a-copy": (lambda: None, Correct(_weight_copy_ok)),
    "layer-immutable": (lambda: setattr(C, "stride", (2, 2)), Raises(AttributeError, "immutable")),
    "shape-channels": (lambda: C.forward(np.ones((3, 8, 8))), Raises(ValueError, "channels")),
    "shape-negative": (lambda: C.output_shape((2, -4, 8)), Raises(ValueError, "positive")),
    "kernel-too-large": (lambda: ConvLayer(np.ones((1, 1, 5, 5))).output_shape((1, 3, 3)),
                         Raises(ValueError, "larger than the padded input")),
    "circular-pad-too-large": (lambda: ConvLayer(np.ones((1, 1, 9, 9)), padding=4,
                                                 padding_mode="circular").output_shape((1, 3, 3)),
                               Raises(ValueError, "exceeds the input size")),
    "forward-2d": (lambda: C.forward(np.ones((8, 8))), Raises(ValueError, "(C, H, W)")),
    "dense-unforced": (lambda: C.dense((2, 64, 64)), Raises(ValueError, "LinearOperator")),
    "dense-oversize": (lambda: ConvLayer(np.ones((8, 3, 3, 3)), padding=1).dense(
        (3, 64, 64), force=True), Raises(MemoryError, "GiB")),
    # frame bounds
    "bounds-tiny-scale": (lambda: _scaled_bounds(1e-170),
                          Correct(lambda fb: fb.injective and abs(fb.cond - _scaled_bounds(1).cond)
                                  <= 1e-12 * fb.cond)),
    "bounds-huge-scale": (lambda: _scaled_bounds(1e160),
                          Correct(lambda fb: fb.injective and abs(fb.cond - _scaled_bounds(1).cond)
                                  <= 1e-12 * fb.cond)),
    "bounds-method": (lambda: frame_bounds(C, (2, 8, 8), "magic"),
                      Raises(ValueError, "unknown method")),
    "bounds-fft-noncirculant": (lambda: frame_bounds(ConvLayer(np.ones((4, 1, 3, 3)), stride=2),
                                                     (1, 8, 8), "fft"),
                                Raises(ValueError, "FFT path needs circular")),
    "bounds-not-a-layer": (lambda: frame_bounds(np.ones((3, 3)), (1, 3, 3)),
                           Raises(TypeError, "ConvLayer")),
    "bounds-no-shape": (lambda: frame_bounds(C), Raises(TypeError, "input shape")),
    # inversion
    "fft-cond-1e8": (lambda: _fft_cond(1e-8), Correct(bool)),
    "fft-cond-1e10": (lambda: _fft_cond(1e-10), Correct(bool)),
    "features-both-halves": (lambda: invert_crelu(_both_halves(X, C), C, X.shape),
                             Warns(InconsistentFeaturesWarning, "both halves positive")),
    "features-relu-only": (lambda: invert_crelu(_relu_only(X, C), C, X.shape),
                           Warns(InconsistentFeaturesWarning, "not consistent")),
    "features-other-layer": (lambda: invert_crelu(*_other_layer_features()),
                             Warns(InconsistentFeaturesWarning, "not consistent")),
    "lsmr-maxiter-1": (lambda: invert_crelu(_feats(X, C), C, X.shape, "lsmr", maxiter=1),
                       Warns(NotConvergedWarning, "did not converge")),
    "bounds-of-another-layer": (lambda: invert_crelu(*_invalid_bounds()[:3], "dense",
                                                     bounds=_invalid_bounds()[3]),
                                Warns(InconsistentFeaturesWarning, "do not describe")),
    "features-negative": (lambda: invert_crelu(-np.ones((16, 10, 10)), C, X.shape),
                          Raises(ValueError, "negative")),
    "features-odd": (lambda: invert_crelu(np.ones((15, 10, 10)), C, X.shape),
                     Raises(ValueError, "even channel count")),
    "features-channels": (lambda: invert_crelu(np.ones((12, 10, 10)), C, X.shape),
                          Raises(ValueError, "2*8 = 16")),
    "features-spatial": (lambda: invert_crelu(np.ones((16, 9, 10)), C, X.shape),
                         Raises(ValueError, "spatially")),
    "features-nan": (lambda: invert_crelu(np.full((16, 10, 10), np.nan), C, X.shape),
                     Raises(ValueError, "NaN")),
    "solver-unknown": (lambda: invert_crelu(_feats(X, C), C, X.shape, "magic"),
                       Raises(ValueError, "unknown solver")),
    "non-injective": (lambda: invert_crelu(_feats(X, _circ(k=1)), _circ(k=1), X.shape),
                      Warns(NonInjectiveWarning, "not injective")),
    "non-injective-raise": (lambda: invert_crelu(_feats(X, _circ(k=1)), _circ(k=1), X.shape,
                                                 on_non_injective="raise"),
                            Raises(NonInjectiveError, "not injective")),
    "lsmr-float32": (lambda: invert_crelu(
        _feats(X.astype(np.float32), ConvLayer(np.ones((8, 2, 3, 3), np.float32), padding=1)),
        ConvLayer(np.ones((8, 2, 3, 3), np.float32), padding=1), X.shape, "lsmr"),
        Raises(ValueError, "float64")),
    "bounds-wrong-type": (lambda: invert_crelu(_feats(X, C), C, X.shape, bounds=(1.0, 2.0)),
                          Raises(TypeError, "FrameBounds")),
    "inverse-tiny-scale-lsmr": (lambda: _scaled_inverse(1e-170, "lsmr"),
                                Correct(lambda e: e < 1e-10)),
    "inverse-huge-scale-fft": (lambda: _scaled_inverse(1e160, "fft"),
                               Correct(lambda e: e < 1e-12)),
    "dense-solver-oversize": (lambda: invert_crelu(
        np.ones((16, 64, 64)), ConvLayer(np.ones((8, 3, 3, 3)), padding=1), (3, 64, 64), "dense"),
        Raises(MemoryError, "GiB")),
    # max-pooling
    "pool-wrong-switch": (lambda: invert_crelu_maxpool(PF, _wrong_switch(PS), PL, PX.shape, 2),
                          Warns(InconsistentFeaturesWarning, "not consistent")),
    "pool-switch-outside": (lambda: invert_crelu_maxpool(PF, PS + 100, PL, PX.shape, 2),
                            Raises(ValueError, "outside")),
    "pool-switch-float": (lambda: invert_crelu_maxpool(PF, PS.astype(float), PL, PX.shape, 2),
                          Raises(TypeError, "integer")),
    "pool-negative": (lambda: invert_crelu_maxpool(-PF - 1, PS, PL, PX.shape, 2),
                      Raises(ValueError, "negative")),
    "pool-zero": (lambda: crelu_maxpool(PX, PL, 0), Raises(ValueError, "pool")),
    "pool-bool": (lambda: crelu_maxpool(PX, PL, True), Raises(ValueError, "pool")),
    "pool-maxiter-2": (lambda: invert_crelu_maxpool(PF, PS, PL, PX.shape, 2, solver="lsmr",
                                                    maxiter=2),
                       Warns(NotConvergedWarning, "did not converge")),
    "pool-linear-no-bounds": (lambda: invert_crelu_maxpool(PF, PS, PL, PX.shape, 2, "linear",
                                                           certify=False),
                              Raises(ValueError, "needs frame bounds")),
    "pool-activation": (lambda: crelu_maxpool(PX, PL, 2, "tanh"), Raises(ValueError, "activation")),
    "pool-tiny-scale": (lambda: _rel(invert_crelu_maxpool(*_pool_case(1e-170)[2:],
                                                          _pool_case(1e-170)[0], PX.shape, 2).x,
                                     PX),
                        Correct(lambda e: e < 1e-12)),
    # pairing
    "pairing-huge-scale": (lambda: _opposite_pair(1e200),
                           Correct(lambda mu: np.allclose(mu, -1.0, rtol=0, atol=1e-12))),
    "pairing-tiny-scale": (lambda: _opposite_pair(1e-200),
                           Correct(lambda mu: np.allclose(mu, -1.0, rtol=0, atol=1e-12))),
    "pairing-one-filter": (lambda: pairing(np.ones((1, 9))), Raises(ValueError, "2")),
    "pairing-zero-filter": (lambda: pairing(np.vstack([np.zeros(9), np.ones(9)])),
                            Raises(ValueError, "all zero")),
    # Rademacher complexity
    "rademacher-enumeration-limit": (lambda: rad.two_layer_class(np.ones((17, 2)), exact=True),
                                     Raises(ValueError, "L <= 16")),
    "rademacher-nan": (lambda: rad.linear_class(np.full((4, 2), np.nan)), Raises(ValueError, "NaN")),
    "rademacher-B": (lambda: rad.linear_class(np.ones((4, 2)), B=0.0), Raises(ValueError, "B")),
    "rademacher-delta": (lambda: rad.linear_class(np.ones((4, 2)), delta=1.0),
                         Raises(ValueError, "delta")),
    "rademacher-draws": (lambda: rad.linear_class(np.ones((4, 2)), n_draws=0),
                         Raises(ValueError, "n_draws")),
    # the command line
    "cli-16-bit-png": (lambda: _recon("g16.png"), Exits(0, "16-bit greyscale")),
    "cli-greyscale-one-channel": (lambda: _recon("grey.png"), Exits(0, "16x16, 1 stage")),
    "cli-black-image": (lambda: _recon("black.png"), Exits(0, "all zero", forbid="nan")),
    "cli-zero-weights": (lambda: _recon("rgb.png", "--weights", _files() / "zero.safetensors"),
                         Exits(1, "not a frame")),
    "cli-maxiter-1": (lambda: _recon("rgb32.png", "--maxiter", "1"), Exits(1, "did not converge")),
    "cli-text-as-image": (lambda: _recon("text.png"), Exits(2, "cannot read")),
    "cli-out-under-a-file": (lambda: _cli("reconstruct", _files() / "rgb.png", "--out",
                                          _files() / "afile" / "p.png", "--no-progress"),
                             Exits(2, "is not a folder")),
    "cli-stages-negative": (lambda: _recon("rgb.png", "--stages", "-3"), Exits(2, "--stages")),
    "cli-stages-too-wide": (lambda: _recon("rgb.png", "--stages", "4"),
                            Exits(2, "18.6 GiB of float64 weights")),
    "cli-train-steps-0": (lambda: _cli("train", "relu", "--steps", "0"), Exits(2, "--steps")),
    "cli-verify-seed-negative": (lambda: _cli("verify", "--seed", "-1"), Exits(2, "--seed")),
    "cli-verify-out-is-a-file": (lambda: _cli("verify", "--out", _files() / "afile", "--only",
                                              "crelu-identities", "--no-progress"),
                                 Exits(2, "afile")),
    # deep stacks
    "deep-no-stages": (lambda: deep_forward(np.ones((1, 8, 8)), []),
                       Raises(ValueError, "no stages")),
    "deep-switch-count": (lambda: invert_deep(deep_forward(_rng(3).random((1, 8, 8)), _stack()).last,
                                              [], _stack(), (1, 8, 8)),
                          Raises(ValueError, "switch arrays")),
}


def run_case(call, expect):
    """Evaluate one case; return ``(ok, detail)``."""
    if isinstance(expect, Exits):
        code, text = call()
        ok = code == expect.code and expect.fragment.lower() in text.lower() and not (
            expect.forbid and expect.forbid in text.lower())
        return ok, ("clear error" if code else "correct") if ok else (
            f"exit {code}: {text[-300:]}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is what is being classified
            if isinstance(expect, Raises) and isinstance(exc, expect.type) and \
                    expect.fragment in str(exc):
                return True, "clear error"
            return False, f"{type(exc).__name__}: {str(exc)[:200]}"
    ours = [w for w in caught if issubclass(w.category, UserWarning)
            and w.category.__module__.startswith("theory")]
    if isinstance(expect, Warns):
        hit = [w for w in ours if issubclass(w.category, expect.type)
               and expect.fragment in str(w.message)]
        return (True, "warned") if hit else (False, f"no {expect.type.__name__}: {ours!r}")
    if isinstance(expect, Raises):
        return False, f"returned {str(result)[:100]!r} instead of raising"
    try:
        good = bool(expect.check(result))
    except Exception as exc:  # noqa: BLE001
        return False, f"check raised {exc!r}"
    if ours:
        return False, f"correct={good} but warned: {[str(w.message)[:80] for w in ours]}"
    return good, "correct" if good else f"wrong answer: {str(result)[:100]}"


def test_catalogue_has_at_least_60_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name):
    call, expect = CASES[name]
    ok, detail = run_case(call, expect)
    assert ok, f"{name}: {detail}"


def test_a_silent_wrong_answer_is_caught_by_the_harness():
    """Negative control of the harness itself: a wrong Correct check fails."""
    ok, detail = run_case(lambda: crelu(np.array([[1.0, -2.0]]), axis=1),
                          Correct(lambda r: r.tolist() == [[1.0, 0.0, 0.0, 0.0]]))
    assert not ok and "wrong answer" in detail
    ok, _ = run_case(lambda: 1, Raises(ValueError, "x"))
    assert not ok
    assert math.isfinite(EPS)
