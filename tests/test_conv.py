"""ConvLayer as a LinearOperator: dot tests, dense oracle, FFT cross-check, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given

from theory.testing import conv_layers, injective_layers
from theory import ConvLayer
from theory.diagnostics import dot_test

EPS = np.finfo(np.float64).eps


@given(conv_layers())
def test_dot_test_every_configuration(case):
    op = case.layer.operator(case.input_shape)
    err, tol = dot_test(op, np.random.default_rng(0))
    assert err <= tol


@given(conv_layers())
def test_operator_matches_dense_matrix(case):
    op = case.layer.operator(case.input_shape)
    a = case.layer.dense(case.input_shape)
    assert a.shape == op.shape and op.dtype == np.float64
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(a.shape[1]), rng.standard_normal(a.shape[0])
    scale = np.abs(a).sum()
    assert np.abs(op.matvec(x) - a @ x).max() <= 8 * EPS * scale * np.abs(x).max()
    assert np.abs(op.rmatvec(y) - a.T @ y).max() <= 8 * EPS * scale * np.abs(y).max()
    X = rng.standard_normal((a.shape[1], 3))
    np.testing.assert_allclose(op.matmat(X), a @ X, atol=8 * EPS * scale * np.abs(X).max())


def test_wrong_adjoint_fails_dot_test():
    """Negative control: conv_transpose2d without output_padding is not the adjoint."""
    layer = ConvLayer(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), stride=2)
    shape = (2, 8, 8)  # (8 - 3) mod 2 = 1: output_padding matters
    op = layer.operator(shape)
    out = layer.output_shape(shape)

    def bad_rmatvec(y):
        t = torch.from_numpy(y.reshape(1, *out))
        g = F.conv_transpose2d(t, layer.weight, stride=2)  # 7x7: wrong, pad to 8x8
        return F.pad(g, (1, 0, 1, 0)).reshape(-1).numpy()
    err, tol = dot_test(op, np.random.default_rng(0), rmatvec=bad_rmatvec)
    assert err > 1e3 * tol


@given(injective_layers(circulant=True))
def test_fft_forward_equals_conv2d(case):
    plan = case.layer.fft_plan(case.input_shape)
    x = np.random.default_rng(0).standard_normal((2, *case.input_shape))
    y = case.layer.forward(x)
    assert np.abs(plan.forward(x) - y).max() <= 1e3 * EPS * max(np.abs(y).max(), 1)


def test_circular_forward_matches_torch_circular_conv():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((5, 2, 3, 3)), rng.standard_normal((1, 2, 6, 7))
    layer = ConvLayer(w, stride=2, padding=1, padding_mode="circular")
    conv = torch.nn.Conv2d(2, 5, 3, stride=2, padding=1, padding_mode="circular", bias=False).double()
    conv.weight.data = torch.from_numpy(w)
    np.testing.assert_array_equal(layer.forward(x), conv(torch.from_numpy(x)).detach().numpy())


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    layer = ConvLayer(np.ones((2, 1, 3, 3)), padding=1)
    assert isinstance(layer.forward(np.zeros((1, 4, 4))), np.ndarray)
    assert isinstance(layer.forward(torch.zeros(1, 4, 4, dtype=torch.float64)), torch.Tensor)


@pytest.mark.parametrize("kwargs, shape, match", [
    (dict(weight=np.ones((2, 3, 3))), (3, 5, 5), "4 dimensions"),
    (dict(weight=np.ones((2, 1, 3, 3)), padding_mode="reflect"), (1, 5, 5), "padding_mode"),
    (dict(weight=np.ones((2, 1, 3, 3)), stride=0), (1, 5, 5), "stride must be >= 1"),
    (dict(weight=np.ones((2, 1, 3, 3)), padding=-1), (1, 5, 5), "padding must be >= 0"),
    (dict(weight=np.full((2, 1, 3, 3), np.nan)), (1, 5, 5), "NaN or Inf"),
    (dict(weight=np.ones((0, 1, 3, 3))), (1, 5, 5), "empty"),
    (dict(weight=np.ones((2, 1, 9, 9))), (1, 5, 5), "kernel 9x9 is larger than the padded input 5x5"),
    (dict(weight=np.ones((2, 2, 3, 3))), (3, 5, 5), "3 channels but the layer's filters have 2"),
    (dict(weight=np.ones((2, 1, 3, 3)), padding=6, padding_mode="circular"), (1, 5, 5), "exceeds"),
    (dict(weight=np.ones((2, 1, 3, 3))), (5, 5), r"\(C, H, W\)"),
])
def test_bad_input_is_refused_clearly(kwargs, shape, match):
    with pytest.raises(ValueError, match=match):
        ConvLayer(**kwargs).operator(shape)


def test_dense_refuses_large_inputs():
    with pytest.raises(ValueError, match="dense matrix"):
        ConvLayer(np.ones((2, 3, 3, 3))).dense((3, 64, 64))


@given(injective_layers(circulant=True))
def test_fft_residual_by_parseval_equals_direct_residual(case):
    """The plan's frequency-domain residual equals ||A x - z|| computed with conv2d."""
    plan = case.layer.fft_plan(case.input_shape)
    z = np.random.default_rng(5).standard_normal((2, *plan.output_shape))  # not in range(A)
    x, res = plan.solve(z, return_residual=True)
    direct = np.linalg.norm(case.layer.forward(x) - z)
    assert abs(res - direct) <= 1e3 * EPS * np.linalg.norm(z)


# Killers of mutants that survived `python -m verify.mutation` (docs/dev/mutation.md): the
# error messages must name the actual sizes, and a 2-D input is a ValueError, not a crash.
def test_oversized_kernel_error_names_the_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input 4x6$"):
        ConvLayer(np.ones((1, 1, 5, 5)), padding=(1, 2)).forward(np.ones((1, 2, 2)))


def test_input_of_wrong_rank_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"got shape \(3, 3\)$"):
        ConvLayer(np.ones((1, 1, 3, 3)), padding=1).forward(np.ones((3, 3)))


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).
def test_repr_names_the_dilation_only_when_there_is_one():
    """The repr (it names the layer in warnings and errors) shows every hyperparameter:
    an undilated layer has no dilation field and no stray placeholder, a dilated one shows it."""
    plain = repr(ConvLayer(np.ones((2, 1, 3, 3)), padding=1))
    dilated = repr(ConvLayer(np.ones((2, 1, 3, 3)), padding=1, dilation=(1, 2)))
    assert plain.startswith("ConvLayer(2 filters 1x3x3, stride=(1, 1), padding=(1, 1), ")
    assert "dilation" not in plain and "None" not in plain
    assert plain.endswith("padding_mode='zeros', dtype=torch.float64)")
    assert ", dilation=(1, 2), " in dilated and "None" not in dilated
    assert dilated.replace(", dilation=(1, 2)", "") == plain


# Killers of the mutants that survived the seed-2 mutation sample (docs/dev/mutation.md).
def test_oversized_kernel_error_says_whether_the_kernel_is_dilated():
    """A 3x3 kernel with dilation 2 spans 5x5 (receptive field 1 + 2 (3 - 1)): the error calls
    it a dilated kernel; an undilated 5x5 kernel is called a kernel."""
    with pytest.raises(ValueError, match=r"^kernel 5x5 is larger than the padded input 4x4$"):
        ConvLayer(np.ones((1, 1, 5, 5))).operator((1, 4, 4))
    with pytest.raises(ValueError,
                       match=r"^dilated kernel 5x5 is larger than the padded input 4x4$"):
        ConvLayer(np.ones((1, 1, 3, 3)), dilation=2).operator((1, 4, 4))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_tensor_is_refused_by_name(dtype):
    from theory.conv import as_tensor

    with pytest.raises(TypeError, match=rf"^x must be real, got a complex {dtype}$"):
        as_tensor(torch.ones(3, dtype=dtype), "x")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("array", [np.arange(3.0, dtype=np.float32), np.arange(3.0),
                                   torch.arange(3.0, dtype=torch.float32), np.arange(3)])
def test_as_tensor_returns_the_requested_dtype(array, dtype):
    from theory.conv import as_tensor

    t = as_tensor(array, "x", dtype=dtype)
    assert t.dtype == dtype and torch.equal(t, torch.arange(3.0, dtype=dtype))
