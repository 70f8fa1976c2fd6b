"""Full-profile paths of the claims that the quick profile does not reach.

The first end-to-end run of `crelu verify --profile full` found two of them broken while every
quick claim passed: `prop21-photos` asked for a 384 x 384 crop of a 300 x 451 photo (error),
and `frame-bounds-agree` compared its 3 x 32 x 32 case, too large for the oracle, against the
*certified* dense bounds (which sit outside the computed values by their margin) and allowed a
margin that did not grow with the size (fail). These tests run those paths on small inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from theory import ConvLayer, frame_bounds
from verify.claims import Context, operators, reconstruction
from verify.data.images import load_photo


def test_prop21_photos_full_profile_uses_every_photo_at_its_own_size(tmp_path):
    shapes = [load_photo(n).shape[1:] for n in reconstruction.PHOTO_NAMES]
    assert min(min(s) for s in shapes) < 384          # the old crop could not fit them all
    out = reconstruction.check_photos(Context(profile="full", seed=0, out_dir=tmp_path))
    assert out.status == "pass"
    assert [tuple(r["size"]) for r in out.measured["photos"]] == shapes
    broken = reconstruction.check_photos(Context(profile="full", seed=0, out_dir=tmp_path),
                                         broken=True)
    assert broken.status == "fail"                     # the negative control still fails


def test_frame_bounds_agree_beyond_the_oracle_size(monkeypatch, tmp_path):
    """With the oracle's size limit lowered, every case takes the large-input branch: its
    reference is the layer's dense SVD as computed, and the certified methods agree with it
    within their margins; the perturbed bank still fails."""
    monkeypatch.setattr(operators, "ORACLE_MAX_D", 0)
    ctx = Context(profile="quick", seed=0, out_dir=tmp_path)
    out = operators.check_bounds_agree(ctx)
    assert all("reference" in r for r in out.measured["cases"])
    assert out.status == "pass", [r["agree_with_reference"] for r in out.measured["cases"]]
    assert operators.check_bounds_agree(ctx, perturb=True).status == "fail"


@pytest.mark.parametrize("d", [192, 768, 3072])
def test_certified_dense_margin_is_within_the_size_aware_limit(d):
    """The margin allowed grows like n^2 u (Lemma C); at D = 3072 the certified dense bounds of
    the full-profile case need the 1e-8 step of the shift ladder and must still agree."""
    rng = np.random.default_rng(d)
    c = 3
    side = int(np.sqrt(d // c))
    layer = ConvLayer(rng.standard_normal((16, c, 5, 5)) / np.sqrt(75), padding=2,
                      padding_mode="circular")
    shape = (c, side, side)
    fb = frame_bounds(layer, shape, "dense")
    assert fb.certified
    assert fb.margin <= operators.max_margin(int(np.prod(shape))) * fb.upper
    assert operators.max_margin(3072) > 1e-8 > operators.max_margin(192) / 1.01


@pytest.mark.slow
def test_frame_bounds_agree_full_profile(tmp_path):
    """The full profile's own cases (a 16384 x 3072 dense SVD: a minute on two cores)."""
    ctx = Context(profile="full", seed=0, out_dir=tmp_path)
    out = operators.check_bounds_agree(ctx)
    assert out.status == "pass", [r["agree_with_reference"] for r in out.measured["cases"]]
