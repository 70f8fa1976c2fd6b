"""The CReLU identities (docs/theory/identities.md), exactly, for numpy and torch."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from theory import AVR, CReLU, avr, crelu, crelu_preactivation, relu, split_crelu

floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=4, max_dims=4, max_side=5), elements=floats)


@given(arrays)
def test_identities_exact_numpy(z):
    h = crelu(z)
    pos, neg = split_crelu(h)
    assert h.shape[1] == 2 * z.shape[1]
    assert np.array_equal(pos - neg, z)                    # [z]+ - [-z]+ = z, bitwise
    assert np.array_equal(pos + neg, np.abs(z))            # AVR
    assert np.array_equal(pos + neg, avr(z))
    assert np.array_equal(crelu_preactivation(h), z)
    assert (pos * neg == 0).all()                          # complementary supports


@given(arrays)
def test_identities_exact_torch(z):
    t = torch.from_numpy(z)
    h = crelu(t)
    assert isinstance(h, torch.Tensor)
    assert torch.equal(crelu_preactivation(h), t)
    assert torch.equal(h, CReLU()(t))
    assert torch.equal(avr(t), AVR()(t))
    assert np.array_equal(h.numpy(), crelu(z))


@given(arrays)
def test_norm_preserved(z):
    # the squares of the non-zero entries are the same numbers; only the summation order
    # differs, so the relative difference is bounded by gamma_n = n u / (1 - n u)
    n, u = z.size, np.finfo(np.float64).eps / 2
    a, b = np.sum(crelu(z) ** 2), np.sum(z ** 2)
    assert abs(a - b) <= 2 * n * u / (1 - n * u) * b


def test_crelu_of_conv_is_relu_of_paired_bank():
    rng = np.random.default_rng(0)
    w, x = torch.from_numpy(rng.standard_normal((4, 3, 3, 3))), torch.from_numpy(rng.standard_normal((2, 3, 8, 8)))
    lhs = crelu(torch.nn.functional.conv2d(x, w))
    rhs = relu(torch.nn.functional.conv2d(x, torch.cat([w, -w])))
    assert torch.equal(lhs, rhs)


def test_relu_alone_violates_identity():
    """Negative control: ReLU (negative half dropped) does not give back z."""
    z = np.random.default_rng(0).standard_normal((1, 3, 4, 4))
    assert not np.array_equal(relu(z), z)


def test_axis_and_errors():
    z = np.arange(-3.0, 3.0).reshape(2, 3)
    assert crelu(z, axis=0).shape == (4, 3)
    assert crelu(z, axis=-1).shape == (2, 6)
    with pytest.raises(ValueError, match="even number of channels"):
        split_crelu(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="out of range"):
        crelu(z, axis=5)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        crelu([1.0, -1.0])
