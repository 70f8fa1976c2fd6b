r"""
# Invert a conv + CReLU layer and read its certificate

A conv layer \(A\) followed by CReLU gives \(h = (h_+, h_-) = ([Ax]_+, [-Ax]_+)\). Since
\(h_+ - h_- = Ax\), the input comes back by least squares whenever \(A\) is injective, that is
when its lower frame bound \(a = \sigma_{\min}(A)^2\) is positive
([Proposition 2.1](../../theory/proposition-2-1.md)). `frame_bounds` computes
\((a, b)\) (exactly, by FFT, for a circular stride-1 layer) and `invert_crelu` attaches
them to its result as the certificate.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.transform

from theory import ConvLayer, NonInjectiveWarning, crelu, frame_bounds, invert_crelu

# A 96 x 96 colour photo (scikit-image's astronaut), channels first, values in [0, 1].
x = skimage.transform.resize(skimage.data.astronaut(), (96, 96), anti_aliasing=True)
x = np.ascontiguousarray(x.transpose(2, 0, 1))

# %%
# ## An injective layer: 24 random 7x7 filters on 3 channels
#
# With circular padding and stride 1 the layer is block-diagonalised by the FFT, so its
# frame bounds are exact (`exact=True`) and the inverse is solved frequency by frequency.

rng = np.random.default_rng(0)
layer = ConvLayer(rng.standard_normal((24, 3, 7, 7)), padding=3, padding_mode="circular")
h = crelu(layer.forward(x), axis=0)  # (48, 96, 96): positive half, then negative half
bounds = frame_bounds(layer, x.shape)
print(f"frame bounds a = {bounds.lower:.4g}, b = {bounds.upper:.4g}, exact = {bounds.exact}, "
      f"condition number sqrt(b/a) = {np.sqrt(bounds.upper / bounds.lower):.3g}")

res = invert_crelu(h, layer, x.shape)
print(f"solver {res.solver}, injective {res.injective}, "
      f"relative residual {res.relative_residual:.2e}, "
      f"max |x' - x| = {np.abs(res.x - x).max():.2e}")

# %%
# ## A layer that is not injective: 2 filters on 3 channels
#
# Two filters per pixel cannot determine three colour values: the lower frame bound is 0,
# `invert_crelu` warns (`NonInjectiveWarning`) and returns the projection of \(x\) onto the
# row space of \(A\), the best any inverse can do.

thin = ConvLayer(rng.standard_normal((2, 3, 7, 7)), padding=3, padding_mode="circular")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    thin_res = invert_crelu(crelu(thin.forward(x), axis=0), thin, x.shape)
print(f"lower frame bound {thin_res.frame_bounds.lower:.3g}, injective {thin_res.injective}, "
      f"warnings: {[w.category.__name__ for w in caught]}")
print(f"relative error of the projection ||x' - x|| / ||x|| = "
      f"{np.linalg.norm(thin_res.x - x) / np.linalg.norm(x):.3f}")

# %%
# ## What the two inverses look like


def show(img):
    return np.clip(img.transpose(1, 2, 0), 0, 1)


fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
panels = [
    (show(x), "input"),
    (show(res.x), f"24 filters: exact inverse\nmax error {np.abs(res.x - x).max():.1e}"),
    (np.abs(res.x - x).max(axis=0), "24 filters: |x' - x| (max over colour)"),
    (show(thin_res.x), "2 filters: projection\n(lower frame bound 0)"),
]
for ax, (img, title) in zip(axes, panels):
    im = ax.imshow(img)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
fig.colorbar(axes[2].images[0], ax=axes[2], shrink=0.8)
plt.show()
