"""theory.symbolic (exact sympy derivations) against the floating-point routines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from theory import ConvLayer, conv_crelu_maxpool, rademacher, selection, symbolic

EPS = float(np.finfo(np.float64).eps)


def test_identities_are_proved():
    assert symbolic.identities() == {"difference": True, "avr": True, "norm": True,
                                     "one_half_zero": True}


def test_counterexample_ratios_closed_forms():
    assert symbolic.rademacher_ratio("crelu", symbolic.COUNTEREXAMPLE) == sp.sqrt(2)
    assert symbolic.rademacher_ratio("relu", symbolic.COUNTEREXAMPLE) == 1
    relu = symbolic.rademacher_ratio("relu", symbolic.RELU_COUNTEREXAMPLE)
    assert sp.simplify(relu - symbolic.relu_counterexample_ratio()) == 0


def test_corrected_constants_dominate_the_counterexamples():
    c = symbolic.corrected_constants()
    assert sp.simplify(c["crelu"] - c["crelu_floor"]) > 0
    assert sp.simplify(c["relu"] - c["relu_floor"]) > 0
    assert sp.simplify(c["crelu"] - sp.sqrt(2) * c["relu"]) == 0


@pytest.mark.parametrize("activation", ["relu", "crelu", "avr"])
@pytest.mark.parametrize("samples", [symbolic.COUNTEREXAMPLE, symbolic.RELU_COUNTEREXAMPLE,
                                     ((1, 2), (-3, 1), (2, -1), (0, 1))])
def test_float_enumeration_matches_sympy(activation, samples):
    """The arc sweep and enumeration of theory.rademacher against exact arithmetic."""
    exact = float(symbolic.rademacher_ratio(activation, samples))
    x = np.array([[float(v) for v in s] for s in samples])
    r = rademacher.two_layer_class(x, 3, 1.0, activation, exact=True).value
    b = rademacher.theorem41_bound(x, 3, 1.0, exact=True).value
    assert abs(r / b - exact) <= 16 * len(samples) * EPS * exact


def test_negative_control_a_wrong_closed_form_is_detected():
    """The comparison can fail: the ReLU closed form is not the CReLU one."""
    relu = symbolic.rademacher_ratio("relu", symbolic.RELU_COUNTEREXAMPLE)
    crelu = symbolic.rademacher_ratio("crelu", symbolic.RELU_COUNTEREXAMPLE)
    assert sp.simplify(relu - crelu) != 0


def test_figure3_example_matches_the_code():
    ex = symbolic.figure3_example()
    w = np.array([[[[0.0, 2.0]]], [[[2.0, 0.0]]], [[[-1.0, -2.0]]]])
    layer = ConvLayer(w)
    x = np.array([[[-0.4, 0.7, -0.8], [1.0, 0.3, -0.7]]])
    assert np.allclose(np.asarray(layer.forward(x)).reshape(3, 4),
                       np.array(ex["z"], dtype=float), rtol=0, atol=8 * EPS)
    f, s = conv_crelu_maxpool(x, layer, 2)
    assert np.allclose(f.ravel(), [float(v) for v in ex["g_plus"] + ex["g_minus"]],
                       rtol=0, atol=8 * EPS)
    assert s.ravel().tolist() == ex["j_plus"] + ex["j_minus"]
    sel = selection(f, s, layer, x.shape, 2, zero_windows=False)
    def rows(m):  # the same selected filters, in any order
        return sorted(map(tuple, np.asarray(m, dtype=float) + 0.0))
    assert rows(sel.dense()) == rows(np.array(ex["W"], dtype=float))
    fb = sel.frame_bounds("dense")
    a, b = float(ex["a"]), float(ex["b"])
    assert math.isclose(fb.lower, a, rel_tol=64 * EPS) and math.isclose(fb.upper, b,
                                                                        rel_tol=64 * EPS)
