"""Every operator of the package through the same two checks (a lineax-style registry).

Each registry entry builds, from one hypothesis draw, an operator under test and its dense
oracle computed independently (theory.testing.reference_matrix, numpy loops from the
definition of a strided, dilated, padded cross-correlation). Every operator must pass the
normalised dot test and agree with its oracle in both directions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from theory import ConvLayer, conv_crelu_maxpool, selection
from theory.im2col import Im2colConv
from theory.testing import conv_layers, dot_test, pooled_cases, reference_matrix

EPS = float(np.finfo(np.float64).eps)


def _conv(case):
    op = case.layer.at(case.input_shape)
    return op.linear_operator, reference_matrix(case.layer, case.input_shape)


def _conv_gram(case):
    a = reference_matrix(case.layer, case.input_shape)
    return case.layer.at(case.input_shape).gram_operator(), a.T @ a


def _selection_parts(case):
    layer, x, pool, act = case
    f, s = conv_crelu_maxpool(x, layer, pool, act)
    sel = selection(f, s, layer, x.shape, pool, act)
    a = reference_matrix(layer, x.shape)
    _, ho, wo = layer.output_shape(x.shape)
    rows = sel.filter_index * (ho * wo) + sel.position
    return sel, a[rows] * sel.sign[:, None]


def _pooled(case):
    sel, w = _selection_parts(case)
    return sel.linear_operator, w


def _pooled_sparse(case):
    sel, w = _selection_parts(case)
    return aslinearoperator(sel.sparse()), w


def _pooled_gram(case):
    sel, w = _selection_parts(case)
    return sel.gram_operator(), w.T @ w


def _pooled_rows(case):
    """The im2col operator the CGLS solver iterates with (theory.selection.SelectedRows)."""
    sel, w = _selection_parts(case)
    return sel.rows_operator.linear_operator, w


def _pooled_normal(case):
    """The masked Gram A^T diag(m) A: one conv, a mask, one adjoint conv."""
    sel, w = _selection_parts(case)
    return sel.normal_operator(), w.T @ w


def _conv_im2col(case):
    conv = Im2colConv(case.layer, case.input_shape)
    m, d = int(np.prod(conv.output_shape)), int(np.prod(case.input_shape))
    lin = LinearOperator(
        (m, d), dtype=np.float64,
        matvec=lambda v: conv.forward(torch.from_numpy(np.ravel(v))).reshape(-1).clone().numpy(),
        rmatvec=lambda y: conv.adjoint(torch.from_numpy(np.ravel(y))).numpy())
    return lin, reference_matrix(case.layer, case.input_shape)


def _fft_forward(case):
    """The FFT plan's forward map (circulant layers) as a LinearOperator."""
    layer = case.layer
    shape = case.input_shape
    circ = ConvLayer(layer.weight, padding=tuple((r - 1) // 2 for r in layer.receptive_field),
                     padding_mode="circular", dilation=layer.dilation)
    # odd receptive fields keep the output size: the layer is circulant
    op = circ.at(shape)
    plan = op.plan
    m, d = op.shape
    lin = LinearOperator((m, d), matvec=lambda v: plan.forward(v.reshape(shape)).ravel(),
                         rmatvec=lambda y: op.adjoint(y.reshape(op.output_shape)).ravel(),
                         dtype=np.float64)
    return lin, reference_matrix(circ, shape)


def _polyphase_forward(case):
    """The polyphase form S C E (theory.polyphase, numpy, no conv routine) as a forward map;
    the adjoint is the layer's (the dot test then checks the two are adjoint)."""
    from theory.polyphase import coarse_form

    shape = case.input_shape
    op = case.layer.at(shape)
    cf = coarse_form(op)
    lin = LinearOperator(
        op.shape, matvec=lambda v: cf.apply(cf.to_coarse(v.reshape(1, *shape))).ravel(),
        rmatvec=lambda y: op.adjoint(y.reshape(op.output_shape)).ravel(), dtype=np.float64)
    return lin, reference_matrix(case.layer, shape)


def _odd_receptive(case):
    return all(r % 2 for r in case.layer.receptive_field) and all(
        (r - 1) // 2 <= n for r, n in zip(case.layer.receptive_field, case.input_shape[1:]))


REGISTRY = {
    "conv": (conv_layers(), _conv),
    "conv-gram": (conv_layers(), _conv_gram),
    "fft-forward": (conv_layers().filter(_odd_receptive), _fft_forward),
    "polyphase-forward": (conv_layers(), _polyphase_forward),
    "maxpool-selection": (pooled_cases(), _pooled),
    "maxpool-sparse": (pooled_cases(), _pooled_sparse),
    "maxpool-gram": (pooled_cases(frame_rich=True), _pooled_gram),
    "maxpool-rows": (pooled_cases(), _pooled_rows),
    "maxpool-normal": (pooled_cases(frame_rich=True), _pooled_normal),
    "conv-im2col": (conv_layers(), _conv_im2col),
}


def _agree(op, a, rng):
    m, d = a.shape
    x, y = rng.standard_normal(d), rng.standard_normal(m)
    scale = 8 * (max(a.shape) + 1) * EPS * max(np.abs(a).sum(axis=1).max(initial=0.0), 1e-300)
    fwd = np.abs(op.matvec(x) - a @ x).max(initial=0.0) <= scale * np.abs(x).max()
    adj = np.abs(op.rmatvec(y) - a.T @ y).max(initial=0.0) <= (
        8 * (max(a.shape) + 1) * EPS * max(np.abs(a).sum(axis=0).max(initial=0.0), 1e-300)
        * np.abs(y).max(initial=0.0))
    return bool(fwd and adj)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_dot_test_and_dense_oracle(name):
    strategy, build = REGISTRY[name]

    @given(strategy, st.integers(0, 2 ** 32 - 1))
    def check(case, seed):
        op, a = build(case)
        assert op.shape == a.shape
        rng = np.random.default_rng(seed)
        err, tol = dot_test(op, rng)
        assert err <= tol, f"{name}: dot test {err:.3e} > {tol:.3e}"
        assert _agree(op, a, rng), f"{name}: operator differs from its dense oracle"

    check()


def test_oracle_comparison_catches_a_wrong_stride():
    """Negative control: the oracle of a layer with another stride must not agree."""
    rng = np.random.default_rng(0)
    layer = ConvLayer(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1)
    other = ConvLayer(layer.weight, stride=1, padding=1)
    a_wrong = reference_matrix(other, (2, 8, 8))[: layer.at((2, 8, 8)).m]
    assert not _agree(layer.at((2, 8, 8)).linear_operator, a_wrong, rng)


def test_oracle_comparison_catches_a_dropped_dilation():
    rng = np.random.default_rng(1)
    layer = ConvLayer(rng.standard_normal((3, 1, 3, 3)), padding=2, dilation=2)
    a_wrong = reference_matrix(ConvLayer(layer.weight, padding=2), (1, 7, 7))
    op = layer.at((1, 7, 7)).linear_operator
    assert a_wrong.shape != op.shape or not _agree(op, a_wrong, rng)


def test_dot_test_catches_a_wrong_adjoint():
    rng = np.random.default_rng(2)
    op = ConvLayer(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1).at((2, 9, 9))
    lin = op.linear_operator
    err, tol = dot_test(lin, rng, rmatvec=lambda y: 1.01 * lin.rmatvec(y))
    assert err > tol


@given(pooled_cases(), st.integers(0, 2 ** 32 - 1))
def test_float32_products_agree_to_single_precision(case, seed):
    """The mixed-precision products of SelectedRows: within the float32 rounding bound
    (the tolerance of `_agree` with u = 2^-24), and *not* float64-accurate (negative
    control: the check sees the precision)."""
    sel, w = _selection_parts(case)
    op = sel.rows_operator.linear_operator
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(w.shape[1]), rng.standard_normal(w.shape[0])
    u32 = 2.0 ** -24
    fwd_scale = (max(w.shape) + 1) * u32 * max(np.abs(w).sum(axis=1).max(initial=0.0), 1e-300)
    adj_scale = (max(w.shape) + 1) * u32 * max(np.abs(w).sum(axis=0).max(initial=0.0), 1e-300)
    xmax, ymax = np.abs(x).max(initial=0.0), np.abs(y).max(initial=0.0)   # (no rows: y empty)
    assert np.abs(op.matvec32(x) - w @ x).max(initial=0.0) <= 8 * fwd_scale * xmax
    assert np.abs(op.rmatvec32(y) - w.T @ y).max(initial=0.0) <= 8 * adj_scale * ymax


def test_float32_products_are_not_float64_products():
    rng = np.random.default_rng(3)
    layer = ConvLayer(rng.standard_normal((8, 2, 3, 3)), padding=1)
    x = rng.standard_normal((2, 9, 9))
    f, s = conv_crelu_maxpool(x, layer)
    sel = selection(f, s, layer, x.shape)
    op = sel.rows_operator.linear_operator
    w = sel.dense()
    v = rng.standard_normal(w.shape[1])
    assert np.abs(op.matvec32(v) - w @ v).max() > 1e3 * EPS * np.abs(w @ v).max()
    assert np.abs(op.matvec(v) - w @ v).max() < 1e2 * EPS * np.abs(w @ v).max()


# Killers of the mutants that survived the seed-1 mutation sample (docs/dev/mutation.md).

def test_adjoint_of_a_batch_is_the_transpose_applied_to_each_output():
    rng = np.random.default_rng(4)
    layer = ConvLayer(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1)
    op = layer.at((2, 7, 7))
    a = reference_matrix(layer, (2, 7, 7))
    y = rng.standard_normal((5, *op.output_shape))
    want = (y.reshape(5, -1) @ a).reshape(5, 2, 7, 7)
    tol = 8 * (max(a.shape) + 1) * EPS * np.abs(a).sum(axis=0).max() * np.abs(y).max()
    x = op.adjoint(y)
    assert isinstance(x, np.ndarray) and x.shape == (5, 2, 7, 7)
    assert np.abs(x - want).max() <= tol
    xt = op.adjoint(torch.from_numpy(y))
    assert isinstance(xt, torch.Tensor) and np.abs(xt.numpy() - want).max() <= tol


def test_bad_y_is_refused_by_name():
    op = ConvLayer(np.ones((1, 1, 2, 2))).at((1, 3, 3))
    with pytest.raises(TypeError, match=r"^y must be a numpy array or torch tensor, got list$"):
        op.adjoint([[[1.0, 2.0], [3.0, 4.0]]])
    with pytest.raises(ValueError, match=r"^y contains 1 NaN or Inf value\(s\)$"):
        op.adjoint(np.array([[[1.0, np.nan], [0.0, 0.0]]]))


def test_input_of_the_wrong_shape_is_refused_naming_both_shapes():
    import re

    op = ConvLayer(np.ones((1, 1, 2, 2))).at((1, 3, 3))
    for x, got in ((np.ones((1, 4, 4)), "(1, 4, 4)"), (np.ones((3, 3)), "(3, 3)")):
        with pytest.raises(ValueError, match="^" + re.escape(
                f"x must be (1, 3, 3) or (N, *(1, 3, 3)), got shape {got}") + "$"):
            op.forward(x)


def test_dense_size_limit_counts_the_bytes_of_the_layer_dtype():
    """(M + D) D values of the layer's dtype: a float32 matrix of exactly DENSE_MAX_BYTES is
    allowed, the float64 one of the same layer (twice the bytes) is refused, naming its size
    and what to use instead."""
    from theory.operator import DENSE_MAX_BYTES

    d = 64 * 64
    k = DENSE_MAX_BYTES // (4 * d * d) - 1           # (K + 1) D^2 float32 bytes = the limit
    assert k >= 1 and (k + 1) * d * d * 4 == DENSE_MAX_BYTES
    w = np.ones((k, 1, 3, 3))
    ConvLayer(w.astype(np.float32), padding=1).at((1, 64, 64)).check_dense_size()   # silent
    with pytest.raises(MemoryError) as err:
        ConvLayer(w, padding=1).at((1, 64, 64)).check_dense_size()
    msg, m = str(err.value), k * d
    need = (m + d) * d * 8
    assert msg.startswith(f"a dense matrix for input (1, 64, 64) needs {need / 2 ** 30:.1f} GiB "
                          f"({m} x {d} values and the {d} x {d} identity")
    assert msg.endswith(" GiB; use an iterative solver or method (lsmr, iterative) on this input")


def test_dense_matrix_of_exactly_the_cache_size_is_kept(monkeypatch):
    """Kept when it takes at most DENSE_CACHE_BYTES (the boundary included), rebuilt when it
    takes one byte more (the limit lowered to this matrix's size: a real 64 MiB matrix
    would cost seconds)."""
    import theory.operator
    from theory.operator import ConvOperator

    layer = ConvLayer(np.random.default_rng(5).standard_normal((3, 2, 3, 3)), padding=1)
    nbytes = (3 * 6 * 6) * (2 * 6 * 6) * 8           # M x D float64 values
    monkeypatch.setattr(theory.operator, "DENSE_CACHE_BYTES", nbytes)
    op = ConvOperator(layer, (2, 6, 6))               # fresh (layer.at caches per shape)
    a = op.dense()
    assert a.nbytes == nbytes and op.dense() is a
    monkeypatch.setattr(theory.operator, "DENSE_CACHE_BYTES", nbytes - 1)
    op = ConvOperator(layer, (2, 6, 6))
    a = op.dense()
    again = op.dense()
    assert again is not a and np.array_equal(again, a)


# Killers of the mutants that survived the seed-3 mutation sample (docs/dev/mutation.md).


def _rows_case(seed=0):
    rng = np.random.default_rng(seed)
    layer = ConvLayer(rng.standard_normal((6, 2, 3, 3)), stride=2, padding=1)
    x = rng.standard_normal((2, 8, 8))
    return rng, *_selection_parts((layer, x, 2, "crelu"))


def _scales(w):
    """Rounding allowances of W v and W^T u per max|v|, max|u| (as `_agree`)."""
    c = 8 * (max(w.shape) + 1) * EPS
    return c * np.abs(w).sum(axis=1).max(), c * np.abs(w).sum(axis=0).max()


def test_adjoint_of_the_rows_operator_has_the_rows_operator_as_its_adjoint():
    """`.H` of the im2col operator is W_x, and its own adjoint (`.H.rmatvec`, `.H.H`) is
    W_x^T again (oracle: the reference matrix's selected signed rows)."""
    rng, sel, w = _rows_case()
    op = sel.rows_operator.linear_operator
    x, y = rng.standard_normal(w.shape[1]), rng.standard_normal(w.shape[0])
    fwd, bwd = _scales(w)
    adj = op.H
    assert adj.shape == (w.shape[1], w.shape[0])
    assert np.abs(adj.matvec(y) - w.T @ y).max() <= bwd * np.abs(y).max()
    assert np.abs(adj.rmatvec(x) - w @ x).max() <= fwd * np.abs(x).max()
    assert np.abs(adj.H.matvec(x) - w @ x).max() <= fwd * np.abs(x).max()


def test_rows_operator_of_a_selection_with_int32_indices_matches_the_oracle():
    """A `MaxPoolSelection` whose index arrays are int32 (built directly, or loaded from a
    compact file) gives the same im2col operator in both directions as the int64 one."""
    import dataclasses

    rng, sel, w = _rows_case(1)
    small = dataclasses.replace(sel, filter_index=sel.filter_index.astype(np.int32),
                                position=sel.position.astype(np.int32))
    op = small.rows_operator.linear_operator
    x, y = rng.standard_normal(w.shape[1]), rng.standard_normal(w.shape[0])
    fwd, bwd = _scales(w)
    assert np.abs(op.matvec(x) - w @ x).max() <= fwd * np.abs(x).max()
    assert np.abs(op.rmatvec(y) - w.T @ y).max() <= bwd * np.abs(y).max()


def test_dense_refusal_says_what_to_use_and_force_builds_it(monkeypatch):
    """Above DENSE_LIMIT columns `dense()` refuses, naming the size, the limit and the two
    ways out; `force=True` builds the matrix (oracle: reference_matrix). The limit is
    lowered to 8 so the forced matrix stays small."""
    import re

    import theory.operator
    from theory.operator import ConvOperator

    monkeypatch.setattr(theory.operator, "DENSE_LIMIT", 8)
    layer = ConvLayer(np.random.default_rng(2).standard_normal((2, 1, 2, 2)))
    op = ConvOperator(layer, (1, 3, 3))
    with pytest.raises(ValueError, match="^" + re.escape(
            "a dense matrix for input (1, 3, 3) has 9 columns (> 8); use the "
            "LinearOperator, or pass force=True") + "$"):
        op.dense()
    assert np.allclose(op.dense(force=True), reference_matrix(layer, (1, 3, 3)),
                       rtol=0, atol=1e-14)


def test_operator_frame_bounds_pass_their_options_on():
    """`ConvOperator.frame_bounds(method, **options)` hands the options to
    `theory.frame_bounds`: the tile geometry asked for is the one certified, and an
    option the method does not take is refused by name."""
    layer = ConvLayer(np.random.default_rng(1).standard_normal((16, 1, 3, 3)), stride=2,
                      padding=1)
    op = layer.at((1, 8, 8))
    fb = op.frame_bounds("tiles", tiles=((2, 2), (2, 2)))
    assert fb.details["tiles"]["P"] == (2, 2) and fb.details["tiles"]["R"] == (2, 2)
    assert fb.details["tiles"]["placements"] > 1
    with pytest.raises(TypeError, match=r"options \['tiles'\] apply only to .* not to 'dense'"):
        op.frame_bounds("dense", tiles=((2, 2), (2, 2)))


# Killers of the mutants that survived the seed-4 mutation sample (docs/dev/mutation.md).


def test_rows_operator_of_a_response_selected_twice_matches_the_oracle():
    """Features that no input produces (a reconstructed intermediate of a deep inversion)
    can select one response twice: the positive and the negative channel of a unit both
    positive at the same switch. W_x^T then holds that row twice, with opposite signs, and
    the im2col adjoint must add both contributions, afresh on every call (oracle: the
    reference matrix's selected signed rows, two different y in a row)."""
    rng = np.random.default_rng(3)
    k = 6
    layer = ConvLayer(rng.standard_normal((k, 2, 3, 3)), stride=2, padding=1)
    x = rng.standard_normal((2, 8, 8))
    f, s = conv_crelu_maxpool(x, layer)
    kk, pi, pj = np.nonzero(f[:k] > 0)
    f[k + kk[:3], pi[:3], pj[:3]] = 1.0 + np.arange(3)     # the negative channel too,
    s[k + kk[:3], pi[:3], pj[:3]] = s[kk[:3], pi[:3], pj[:3]]   # at the same switch
    sel = selection(f, s, layer, x.shape)
    rows = sel.rows_operator
    assert int(rows.multiplicity.max()) == 2 and int((rows.multiplicity == 2).sum()) == 3
    a = reference_matrix(layer, x.shape)
    _, ho, wo = layer.output_shape(x.shape)
    w = a[sel.filter_index * (ho * wo) + sel.position] * sel.sign[:, None]
    op = rows.linear_operator
    fwd, bwd = _scales(w)
    for _ in range(2):
        v, y = rng.standard_normal(w.shape[1]), rng.standard_normal(w.shape[0])
        assert np.abs(op.matvec(v) - w @ v).max() <= fwd * np.abs(v).max()
        assert np.abs(op.rmatvec(y) - w.T @ y).max() <= bwd * np.abs(y).max()


def test_an_operator_of_something_that_is_not_a_layer_is_refused_naming_its_type():
    from theory.operator import ConvOperator

    with pytest.raises(TypeError, match=r"^layer must be a theory\.ConvLayer, got ndarray$"):
        ConvOperator(np.ones((1, 1, 2, 2)), (1, 3, 3))


def test_adjoint_of_the_wrong_shape_is_refused_naming_both_shapes():
    import re

    op = ConvLayer(np.ones((1, 1, 2, 2))).at((1, 3, 3))
    for y in (np.ones((1, 3, 3)), np.ones((2, 2)), np.ones((2, 1, 1, 2, 2))):
        with pytest.raises(ValueError, match="^" + re.escape(
                f"y must end in the output shape (1, 2, 2), got {y.shape}") + "$"):
            op.adjoint(y)


@pytest.mark.parametrize("c, stride, dilation, mode", [
    (3, 1, 1, "zeros"), (3, 2, 1, "circular"), (16, 1, 1, "zeros"), (20, 2, 1, "zeros"),
    (16, 1, 2, "zeros"), (16, 2, 1, "circular")])
def test_im2col_operator_float32_paths_agree_with_the_dense_oracle(c, stride, dilation, mode):
    """Im2colOperator's float32 products take torch's conv2d (forward) and, from
    ADJOINT_CONV_CHANNELS input channels with zero padding, its transposed conv (adjoint):
    each within the float32 rounding bound of the definition-built matrix, the float64
    products to float64 accuracy, and <A x, y> = <x, A^T y> to float32 rounding."""
    from theory.im2col import ADJOINT_CONV_CHANNELS, Im2colOperator

    rng = np.random.default_rng(c + 7 * stride + 3 * dilation)
    layer = ConvLayer(rng.standard_normal((6, c, 3, 3)), stride=stride, padding=2,
                      dilation=dilation, padding_mode=mode)
    shape = (c, 11, 10)
    op = Im2colOperator(layer, shape)
    a = reference_matrix(layer, shape)
    x, y = rng.standard_normal(a.shape[1]), rng.standard_normal(a.shape[0])
    # componentwise: the float32 rounding of the input (u) and gamma_n of a sum of n terms,
    # n the most non-zeros of a row (forward) or a column (adjoint), any summation order
    u32 = 2.0 ** -24
    gam = lambda n: (n + 1) * u32 / (1 - (n + 1) * u32)  # noqa: E731
    fwd = gam(int((a != 0).sum(axis=1).max())) * (np.abs(a) @ np.abs(x))
    adj = gam(int((a != 0).sum(axis=0).max())) * (np.abs(a).T @ np.abs(y))
    assert (np.abs(op.matvec32(x) - a @ x) <= fwd).all()
    assert (np.abs(op.rmatvec32(y) - a.T @ y) <= adj).all()
    assert np.abs(op.matvec(x) - a @ x).max() <= 1e-12 * np.abs(a @ x).max()
    assert np.abs(op.rmatvec(y) - a.T @ y).max() <= 1e-12 * np.abs(a.T @ y).max()
    lhs, rhs = float(op.matvec32(x) @ y), float(x @ op.rmatvec32(y))
    assert abs(lhs - rhs) <= 1e-5 * (np.abs(a) @ np.abs(x)) @ np.abs(y)
    if mode == "zeros" and c >= ADJOINT_CONV_CHANNELS:   # control: the oracle sees a slip
        from theory import im2col

        im2col.ADJOINT_CONV_CHANNELS, keep = 10 ** 9, im2col.ADJOINT_CONV_CHANNELS
        try:
            slices = op.rmatvec32(y)
        finally:
            im2col.ADJOINT_CONV_CHANNELS = keep
        assert (np.abs(slices - a.T @ y) <= adj).all()        # the other path agrees too
        assert not (np.abs(1.001 * op.rmatvec32(y) - a.T @ y) <= adj).all()
