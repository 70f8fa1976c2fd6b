r"""
# Rademacher complexity: CReLU against ReLU, with intervals

For the two-layer classes \(H\circ\rho\circ[F]^{d_{in}}\) of
[Theorem 4.1](../../theory/rademacher.md) (unit-norm first-layer rows, a top layer of norm
at most \(B\)), we prove that, draw by draw,
\(1 \le R_{\mathrm{CReLU}}/R_{\mathrm{ReLU}} \le \sqrt2\). `theory.rademacher` estimates both
complexities from the same sign draws, exactly in the inner supremum for inputs of rank at
most 2, with a McDiarmid confidence interval. The paper's bound
\(\sqrt{d_{in}}\,B\,R(F)\) is estimated the same way; on two one-dimensional points
\(x = (1, -1)\) the CReLU complexity exceeds it by the factor \(\sqrt 2\).
"""

import matplotlib.pyplot as plt
import numpy as np

from theory import rademacher

# %%
# ## Gaussian samples in the plane, growing sample size

sizes = [4, 8, 16, 32, 64]
rows = []
for L in sizes:
    X = np.random.default_rng(L).standard_normal((L, 2))
    est = rademacher.two_layer_classes(X, d_in=1, n_draws=400, seed=0,
                                       activations=("relu", "crelu"))
    paper = rademacher.theorem41_bound(X, d_in=1, n_draws=400, seed=0, form="paper")
    rows.append((L, est["relu"], est["crelu"], paper))
    print(f"L = {L:3d}: ReLU {est['relu'].value:.4f} {np.round(est['relu'].ci, 4)}, "
          f"CReLU {est['crelu'].value:.4f} {np.round(est['crelu'].ci, 4)}, "
          f"ratio {est['crelu'].value / est['relu'].value:.3f}, "
          f"paper bound {paper.value:.4f}")

# %%
# ## The counterexample to Theorem 4.1 as stated, by exact enumeration

X1 = np.array([[1.0], [-1.0]])
crelu_exact = rademacher.two_layer_class(X1, activation="crelu", exact=True)
bound_exact = rademacher.theorem41_bound(X1, form="paper", exact=True)
print(f"x = (1, -1): R_CReLU = {crelu_exact.value:.6f}, paper bound = {bound_exact.value:.6f}, "
      f"ratio = {crelu_exact.value / bound_exact.value:.6f} (sqrt 2 = {np.sqrt(2):.6f})")

# %%
# ## Estimates with their 95 % intervals

fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
Ls = np.array(sizes, dtype=float)
for k, (name, colour) in enumerate([("ReLU", "C0"), ("CReLU", "C1"), ("paper bound", "C2")]):
    values = np.array([r[k + 1].value for r in rows])
    lo = np.array([r[k + 1].ci[0] for r in rows])
    hi = np.array([r[k + 1].ci[1] for r in rows])
    shift = Ls * (1 + 0.04 * (k - 1))  # side by side, so the intervals do not overlap
    ax.errorbar(shift, values, yerr=[values - lo, hi - values], fmt="o-", color=colour,
                capsize=3, label=f"{name} (95 % McDiarmid interval)")
ax.set_xscale("log", base=2)
ax.set_xlabel("sample size L (Gaussian points in the plane)")
ax.set_ylabel("empirical Rademacher complexity")
ax.legend(fontsize=8)
ratios = [r[2].value / r[1].value for r in rows]
ax_ratio.plot(sizes, ratios, "o-", color="C1", label="CReLU / ReLU (same sign draws)")
ax_ratio.axhline(1, color="k", lw=0.8, ls="--", label="1 (lower end, proved)")
ax_ratio.axhline(np.sqrt(2), color="k", lw=0.8, ls=":", label=r"$\sqrt{2}$ (upper end, proved)")
ax_ratio.set_xscale("log", base=2)
ax_ratio.set_ylim(0.95, 1.5)
ax_ratio.set_xlabel("sample size L")
ax_ratio.set_ylabel("ratio of the estimates")
ax_ratio.legend(fontsize=8)
plt.show()
