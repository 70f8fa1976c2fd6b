r"""
# How many filters make a layer injective?

A conv layer with \(K\) filters on \(C\) input channels has \(K\) outputs per pixel for
\(C\) unknowns per pixel, so it can only be injective when \(K \ge C\). For a circular
stride-1 layer the FFT block-diagonalises \(A^TA\) into one \(C\times C\) block per
frequency, and the frame bounds \(a = \sigma_{\min}(A)^2\), \(b = \sigma_{\max}(A)^2\) are
the extreme eigenvalues over all blocks
([FFT and frame bounds](../../theory/frame-bounds.md)). Below: random \(7\times7\) filter
banks on a \(3\times32\times32\) input; first, on a \(3\times8\times8\) input, the FFT bounds
against the dense SVD of the whole \(192\)-column matrix, an independent computation.
"""

import matplotlib.pyplot as plt
import numpy as np

from theory import ConvLayer, frame_bounds

shape = (3, 32, 32)
counts = list(range(1, 13))
fft = []
for K in counts:
    layer = ConvLayer(np.random.default_rng(K).standard_normal((K, 3, 7, 7)), padding=3,
                      padding_mode="circular")
    fft.append(frame_bounds(layer, shape, method="fft"))

# %%
# ## The FFT bounds against the dense SVD (an independent computation)

for K in (2, 3, 6):
    layer = ConvLayer(np.random.default_rng(K).standard_normal((K, 3, 7, 7)), padding=3,
                      padding_mode="circular")
    f = frame_bounds(layer, (3, 8, 8), method="fft")
    dense = frame_bounds(layer, (3, 8, 8), method="dense")
    print(f"K = {K:2d}: FFT a = {f.lower:10.4g}, b = {f.upper:8.4g} | "
          f"dense SVD a = {dense.lower:10.4g}, b = {dense.upper:8.4g}")

# %%
# ## Lower and upper frame bound against the number of filters

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
lower = np.array([f.lower for f in fft])
upper = np.array([f.upper for f in fft])
ax.semilogy(counts, upper, "o-", label="upper frame bound b")
ax.semilogy([K for K, a in zip(counts, lower) if a > 0], lower[lower > 0], "s-",
            label="lower frame bound a (injective)")
floor = lower[lower > 0].min() / 10  # where a = 0 is drawn on the log axis
ax.semilogy([K for K, a in zip(counts, lower) if a == 0], np.full((lower == 0).sum(), floor),
            "x", color="C3", ms=9, label="a = 0: not injective (drawn at the bottom)")
ax.axvline(shape[0] - 0.5, color="k", lw=0.8, ls="--", label="K = C = 3")
ax.set_xlabel("number of filters K (7x7, on 3 channels, input 3x32x32)")
ax.set_ylabel("frame bound")
ax.legend(fontsize=8)
plt.show()
