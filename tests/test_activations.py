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
    """Identity (4) within the rounding bound of two conv calls (which may sum in different
    orders: torch picks its kernel by the channel counts), for several channel counts."""
    from verify.claims.identities import paired_bank_bound

    rng = np.random.default_rng(0)
    for k, c in ((4, 3), (7, 5), (16, 8)):
        w = torch.from_numpy(rng.standard_normal((k, c, 3, 3)))
        x = torch.from_numpy(rng.standard_normal((2, c, 8, 8)))
        lhs = crelu(torch.nn.functional.conv2d(x, w))
        rhs = relu(torch.nn.functional.conv2d(x, torch.cat([w, -w])))
        assert bool(((lhs - rhs).abs() <= paired_bank_bound(x, w)).all())


def test_paired_bank_bound_covers_another_summation_order_and_not_ten_times_more():
    """The bound against an independent evaluation order (float64 einsum over the unfolded
    patches, summed by numpy, not by conv2d): within it. A perturbation of ten times the
    bound in one entry (a planted error) is outside it."""
    from verify.claims.identities import paired_bank_bound

    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.standard_normal((6, 4, 3, 3)) * 10.0 ** rng.integers(-2, 3))
    x = torch.from_numpy(rng.standard_normal((1, 4, 7, 7)))
    cols = torch.nn.functional.unfold(x, 3).numpy()[0]                # (36, 25)
    z = np.einsum("kj,jp->kp", w.reshape(6, -1).numpy()[:, ::-1], cols[::-1]).reshape(1, 6, 5, 5)
    other = relu(np.concatenate([z, -z], axis=1))
    lhs = crelu(torch.nn.functional.conv2d(x, w)).numpy()
    bound = paired_bank_bound(x, w).numpy()
    assert (np.abs(lhs - other) <= bound).all()
    bad = other.copy()
    i = np.unravel_index(np.argmax(bound), bound.shape)
    bad[i] += 10 * bound[i]
    assert not (np.abs(lhs - bad) <= bound).all()


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
