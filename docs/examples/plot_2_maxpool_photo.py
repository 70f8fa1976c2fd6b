r"""
# Reconstruct a photo through max-pooling

After conv, CReLU and \(2\times2\) max-pooling, every non-zero pooled value is a linear
measurement \(\langle \tilde w, x\rangle\) of the input by a *selected, signed, shifted
filter* \(\tilde w\) (known from the pooling switches). When those filters form a frame, the
input is their least-squares solution ([max-pooling page](../../theory/maxpool.md)). CReLU
keeps the largest **and** the smallest response of each pool; ReLU keeps only the largest,
and the same algorithm then usually has too few measurements.
"""

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.transform

from theory import ConvLayer, conv_crelu_maxpool, invert_crelu_maxpool

# A 48 x 48 crop of scikit-image's camera man, one channel, values in [0, 1].
img = skimage.transform.resize(skimage.data.camera()[40:280, 140:380], (48, 48),
                               anti_aliasing=True)
x = img[None]  # (1, 48, 48)

rng = np.random.default_rng(1)
layer = ConvLayer(rng.standard_normal((8, 1, 5, 5)), padding=2)  # 8 filters, zero padding


def psnr(estimate, truth):
    mse = np.mean((estimate - truth) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(1.0 / mse)


# %%
# ## CReLU + max-pooling, and ReLU + max-pooling, inverted with the switches

LABEL = {"crelu": "CReLU", "relu": "ReLU"}
results = {}
for activation in ("crelu", "relu"):
    features, switches = conv_crelu_maxpool(x, layer, pool=2, activation=activation)
    res = invert_crelu_maxpool(features, switches, layer, x.shape, pool=2,
                               activation=activation, on_non_injective="ignore")
    results[activation] = res
    print(f"{activation:>5}: {features.shape[0]} pooled maps of {features.shape[1:]}, "
          f"{res.n_selected} selected filters for {x.size} unknowns, "
          f"frame: {res.is_frame}, PSNR {psnr(res.x, x):.1f} dB, "
          f"relative residual {res.relative_residual:.1e}")

# %%
# ## The reconstructions
#
# A PSNR above 100 dB means exact up to rounding. The ReLU panel is the minimum-norm
# solution: the projection of the photo onto the span of the filters ReLU kept.

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
panels = [(x[0], "input (48 x 48)")] + [
    (np.clip(results[a].x[0], 0, 1),
     f"{LABEL[a]} + max-pool: "
     f"{psnr(results[a].x, x):.1f} dB\n{results[a].n_selected} measurements, "
     f"frame: {results[a].is_frame}")
    for a in ("crelu", "relu")
]
for ax, (panel, title) in zip(axes, panels):
    ax.imshow(panel, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
plt.show()
