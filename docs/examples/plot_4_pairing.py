r"""
# Pairing of your own filters

For a filter bank \(\{w_i\}\), the *pairing filter* of \(w_i\) is the most negatively
correlated other filter, and \(\mu_i = \min_{j\ne i}\langle \phi_i, \phi_j\rangle\) with
\(\phi_i = w_i/\|w_i\|\) ([pairing page](../../theory/pairing.md)). The paper's observation
is that trained ReLU networks learn such (near-)opposite pairs in their first layers, which
is what CReLU builds in. Whether a bank pairs *more than chance* is judged against two
baselines: random Gaussian banks of the same size, and the bank itself with the sign of every
filter flipped at random (a randomisation test).

Replace `bank` below with your own weights: a numpy array or a torch tensor of shape
`(K, C, kh, kw)`, for example `model.conv1.weight.detach()`.
"""

import matplotlib.pyplot as plt
import numpy as np

from theory import pairing, random_pairing_baseline, sign_flip_baseline

# %%
# ## A bank with built-in pairs, and a bank without
#
# 32 filters of shape 3x5x5: 16 random filters and, for 12 of them, a noisy negative copy
# (plus 4 unrelated ones) make the paired bank; 32 i.i.d. Gaussian filters make the other.

rng = np.random.default_rng(0)
base = rng.standard_normal((16, 3, 5, 5))
paired_bank = np.concatenate([base, -base[:12] + 0.3 * rng.standard_normal((12, 3, 5, 5)),
                              rng.standard_normal((4, 3, 5, 5))])
random_bank = rng.standard_normal((32, 3, 5, 5))

baseline = random_pairing_baseline(32, (3, 5, 5), repetitions=200, seed=0)
print(f"random Gaussian banks (K = 32, d = 75): mean mu = {baseline.mean:.3f}, "
      f"95 % interval of the bank mean {np.round(baseline.interval, 3)}")
results = {}
for name, bank in [("paired bank", paired_bank), ("random bank", random_bank)]:
    p = pairing(bank)
    flips = sign_flip_baseline(bank, repetitions=1000, seed=0)
    results[name] = p
    print(f"{name}: mean mu = {p.mean:.3f}; sign-flip randomisation p-value "
          f"{flips.tail_probability(p.mean):.3g}; pair of filter 0 is filter {p.pair[0]}")

# %%
# ## How close each filter is to its pairing filter

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
bins = np.linspace(-1, 0, 41)
for (name, p), colour in zip(results.items(), ["C3", "C0"]):
    ax.hist(p.mu, bins=bins, alpha=0.6, color=colour, label=f"{name}: mu_i of its 32 filters")
ax.axvspan(*baseline.interval, color="0.8", label="random banks: 95 % interval of the mean")
ax.axvline(baseline.mean, color="k", lw=1, label="random banks: mean")
ax.set_xlabel(r"$\mu_i$ (cosine similarity to the pairing filter)")
ax.set_ylabel("number of filters")
ax.legend(fontsize=8, loc="upper center")
plt.show()
