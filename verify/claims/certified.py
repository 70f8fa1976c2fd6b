"""Claims on the certified frame bounds: the truth lies inside every certified interval.

The oracle is the SVD of the matrix built from the definition of the conv
(`theory.testing.reference_matrix`, numpy loops, no conv routine). Containment allows only the
oracle's own rounding, ``4 max(M, D) eps sigma_max^2`` (LAPACK's backward error), never a
tolerance on the bound: a certified interval that misses the oracle by more is a wrong proof.
"""

from __future__ import annotations

import numpy as np

from theory import ConvLayer, frame_bounds
from theory.polyphase import coarse_form
from theory.symbol import symbol_bounds
from theory.testing import reference_matrix
from verify.claims.base import Claim, Context, Outcome, status_from

EPS = float(np.finfo(np.float64).eps)

#: (K, C, k, stride, padding, dilation, (H, W)) circular layers: strides 1-3, dilation, s | H
#: and s not dividing H (outputs wrapping the torus), H' < H/s (a row subset)
CIRCULAR = [(16, 2, 3, 2, 1, 1, (12, 12)), (40, 3, 5, 2, 2, 1, (10, 10)),
            (24, 2, 3, 1, 2, 2, (9, 9)), (20, 1, 7, 3, 3, 1, (12, 12)),
            (12, 1, 3, 2, 2, 2, (10, 10)), (20, 1, 5, 2, 1, 1, (14, 14)),
            (14, 2, 3, 2, 1, 1, (9, 11))]
#: zero-padded layers: strides 1-4, dilation, the tiles forced small so that several
#: translation classes and seams occur even on these oracle-sized inputs; "band": a square
#: coarse kernel (K = C s^2, no injective tile), certified by the whole-image band
#: (`theory.band_gram`, forced by single_tile_limit=0)
ZEROS = [(24, 2, 3, 2, 1, 1, (14, 14), ((3, 3), (2, 2))),
         (40, 2, 5, 2, 2, 1, (16, 16), ((4, 4), (2, 2))),
         (10, 1, 3, 1, 2, 2, (12, 12), ((4, 4), (2, 2))),
         (40, 1, 7, 2, 3, 1, (16, 16), ((4, 4), (4, 4))),
         (8, 2, 4, 2, 1, 1, (16, 16), "band"),
         (4, 4, 3, 1, 1, 1, (10, 10), "band"),
         (60, 3, 4, 3, 1, 1, (13, 12), ((2, 2), (2, 2))),    # the last row is never read: a = 0
         (16, 2, 3, 1, 1, 1, (12, 12), None),
         (12, 3, 4, 2, 1, 1, (14, 14), "band")]


def _layer(rng, k_out, c, k, s, p, d, mode) -> ConvLayer:
    return ConvLayer(rng.standard_normal((k_out, c, k, k)) / np.sqrt(c * k * k), stride=s,
                     padding=p, dilation=d, padding_mode=mode)


def _oracle(layer, shape):
    a = reference_matrix(layer, shape)
    s = np.linalg.svd(a, compute_uv=False)
    lo = float(s[-1]) ** 2 if a.shape[0] >= a.shape[1] else 0.0
    return lo, float(s[0]) ** 2, 4 * max(a.shape) * EPS * float(s[0]) ** 2


def _row(layer, shape, lower, upper, certified, how):
    lo, hi, slack = _oracle(layer, shape)
    inside = bool(certified and lower <= lo + slack and hi <= upper + slack)
    # a check that lower = 0 always passes would be empty: where a > 0 the certificate must
    # prove a positive lower bound (these cases are chosen so that it can)
    nontrivial = bool(lower > 0 or lo <= slack)
    return {"pass": inside and nontrivial, "nontrivial": nontrivial,"layer": repr(layer), "input": shape, "bounds": how, "lower": lower, "upper": upper,
            "certified": bool(certified), "oracle": (lo, hi), "oracle_slack": slack,
            "contains_truth": inside,
            "lower_over_truth": lower / lo if lo > 0 else None,
            "upper_over_truth": upper / hi if hi > 0 else None}


def check_circular(ctx: Context, wrong_stride: bool = False) -> Outcome:
    """`polyphase` bounds of circular layers contain the oracle's (a, b); the control computes
    them for the same weights with stride 1 (a wrong stride)."""
    rng = ctx.rng("certified-circular")
    cases = CIRCULAR if ctx.profile == "full" else CIRCULAR[:5]
    rows = []
    for k_out, c, k, s, p, d, (h, w) in cases:
        layer = _layer(rng, k_out, c, k, s, p, d, "circular")
        shape = (c, h, w)
        used = ConvLayer(layer.weight, stride=1, padding=p, dilation=d,
                         padding_mode="circular") if wrong_stride else layer
        method = "fft" if used.is_circulant(shape) else "polyphase"
        fb = frame_bounds(used, shape, method)
        rows.append(_row(layer, shape, fb.lower, fb.upper, fb.certified,
                         f"{method} ({fb.note})" + (", stride 1 (planted)" if wrong_stride else "")))
    return Outcome(status_from(all(r["pass"] for r in rows)), {"cases": rows})


def check_zeros(ctx: Context, drop_boundary: bool = False) -> Outcome:
    """`tiles` bounds of zero-padded layers contain the oracle's (a, b); the control drops
    the boundary term: the symbol minimum of the circulant embedding as the lower bound."""
    rng = ctx.rng("certified-zeros")
    cases = ZEROS if ctx.profile == "full" else ZEROS[:6]
    rows = []
    for k_out, c, k, s, p, d, (h, w), tiles in cases:
        layer = _layer(rng, k_out, c, k, s, p, d, "zeros")
        shape = (c, h, w)
        opts = ({} if tiles is None else {"single_tile_limit": 0} if tiles == "band"
                else {"tiles": tiles, "tile_limit": 10 ** 6})
        fb = frame_bounds(layer, shape, "tiles", **opts)
        lower, how = fb.lower, f"tiles ({fb.note})"
        if drop_boundary:
            cf = coarse_form(layer.at(shape))
            lower = symbol_bounds(cf, cf.h.min_canvas(), cf.w.min_canvas()).lower
            how = "symbol minimum on the canvas, boundary rows dropped (planted)"
        rows.append(_row(layer, shape, lower, fb.upper, fb.certified, how))
    return Outcome(status_from(all(r["pass"] for r in rows)), {"cases": rows})


CLAIMS = [
    Claim(
        id="certified-bounds-circular",
        kind="theorem",
        statement=("For circular conv layers with any stride and dilation, the polyphase "
                   "certificate's interval [lower, upper] contains (sigma_min(A)^2, "
                   "sigma_max(A)^2) of the matrix built from the definition, and is exact "
                   "(to its rounding margin) when the outputs cover the coarse torus uniformly."),
        source=("our derivation; docs/theory/frame-bounds.md, 'Theorem E (circular padding, any "
                "stride)' and 'What certified means'"),
        docs="theory/frame-bounds.md#certified-bounds-for-every-conv-layer",
        threshold=("certified, lower <= a + slack and b <= upper + slack, slack = 4 max(M, D) "
                   "eps b (the oracle's rounding); lower > 0 wherever a > slack"),
        tolerance_rationale=("the certified interval is proved, rounding included; only the "
                             "oracle's own SVD error (LAPACK backward error) is allowed"),
        check=check_circular,
        negative_control=lambda ctx: check_circular(ctx, wrong_stride=True),
        negative_control_description=("the same weights certified with stride 1 instead of "
                                      "their stride (a wrong polyphase decomposition)"),
    ),
    Claim(
        id="certified-bounds-zeros",
        kind="theorem",
        statement=("For zero-padded conv layers with any stride and dilation, the tile "
                   "certificate's lower bound and the canvas symbol's upper bound enclose "
                   "(sigma_min(A)^2, sigma_max(A)^2) of the matrix built from the definition, "
                   "for forced small tiles (several seams) and for the automatic choice."),
        source=("our derivation; docs/theory/frame-bounds.md, 'Theorem U', 'Theorem T (local "
                "certificates)' and 'What certified means'"),
        docs="theory/frame-bounds.md#certified-bounds-for-every-conv-layer",
        threshold=("certified, lower <= a + slack and b <= upper + slack, slack = 4 max(M, D) "
                   "eps b (the oracle's rounding); lower > 0 wherever a > slack"),
        tolerance_rationale=("the certified interval is proved, rounding included; only the "
                             "oracle's own SVD error (LAPACK backward error) is allowed"),
        check=check_zeros,
        negative_control=lambda ctx: check_zeros(ctx, drop_boundary=True),
        negative_control_description=("the boundary term dropped: the lower bound is the "
                                      "symbol minimum of the circulant embedding, which "
                                      "ignores the missing boundary rows of A"),
    ),
]
