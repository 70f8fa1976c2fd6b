"""Every figure of the report and of ``crelu reconstruct``: plotting only, no experiments.

Each function takes numbers a claim or a command has already computed, draws them and writes
one PNG atomically (:func:`verify.atomic.savefig`); it returns the path as a string. Nothing
here changes a measured value. matplotlib is imported on the first call (Agg backend), so
importing this module is cheap.

Conventions: every axis is labelled, every line or marker has a legend entry that says what
it is, and the figure size follows the data's aspect ratio (images, filter mosaics), so that
no panel is mostly empty.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from verify.atomic import savefig

Path_ = str | os.PathLike


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path_, dpi: int = 100, **kwargs: Any) -> str:
    """Write ``fig`` to ``path`` atomically (`verify.atomic.savefig`) and close it."""
    plt = pyplot()
    try:
        return savefig(fig, path, dpi=dpi, **kwargs)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- operators
def frame_spectrum(spectrum: np.ndarray, sigma_min: float, sigma_max: float, title: str,
                   path: Path_) -> str:
    """sigma_min and sigma_max of A(omega) over the frequency grid, and all singular values.

    ``spectrum``: (H, W, r) singular values per frequency, fft-shifted, descending in the last
    axis; ``sigma_min``, ``sigma_max``: the layer's extreme singular values (sqrt of the frame
    bounds).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14.5, 3.9), layout="constrained")
    for ax, data, name in [(axes[0], spectrum[..., -1], r"$\sigma_{\min}(A(\omega))$"),
                           (axes[1], spectrum[..., 0], r"$\sigma_{\max}(A(\omega))$")]:
        im = ax.imshow(data, extent=(-np.pi, np.pi, -np.pi, np.pi), cmap="viridis")
        ax.set_title(name)
        ax.set_xlabel(r"frequency $\omega_2$")
        ax.set_ylabel(r"frequency $\omega_1$")
        fig.colorbar(im, ax=ax, label="singular value")
    ax = axes[2]
    ax.hist(spectrum.ravel(), bins=80, color="0.4", label="singular values of all A(ω)")
    ax.axvline(sigma_min, color="C3", ls="--",
               label=rf"$\sqrt{{a}}$ = {sigma_min:.3f} (lower frame bound)")
    ax.axvline(sigma_max, color="C0", ls="--",
               label=rf"$\sqrt{{b}}$ = {sigma_max:.3f} (upper frame bound)")
    ax.set_xlabel("singular value")
    ax.set_ylabel("count")
    ax.set_title("all singular values of the layer")
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


def prop21_panel(panels: Sequence[tuple[str, np.ndarray]], title: str, path: Path_) -> str:
    """One row of images (3, H, W) in [0, 1] with their captions."""
    plt = pyplot()
    h, w = panels[0][1].shape[-2:]
    ncol = len(panels)
    fig, axes = plt.subplots(1, ncol, figsize=(4 * ncol, 4 * h / w + 0.8), squeeze=False,
                             layout="constrained")
    for ax, (caption, img) in zip(axes[0], panels):
        ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
        ax.set_title(caption, fontsize=10)
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


# ----------------------------------------------------------------------------- pairing
def pairing_histograms(rows: Mapping[str, Sequence[Mapping[str, Any]]], path: Path_) -> str:
    """Histograms of mu_i per layer (columns) per model (rows), with the two baselines.

    Each entry of ``rows[label]`` is a layer effect of :func:`verify.claims.pairing.layer_effect`
    (keys ``_mu``, ``_base``, optional ``_signflip``, ``mean_mu``, ``n_filters``, ``dim``).
    """
    plt = pyplot()
    ncol = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.4 * ncol, 2.5 * len(rows) + 0.8),
                             squeeze=False, layout="constrained")
    for r, (label, effects) in enumerate(rows.items()):
        for c, eff in enumerate(effects):
            ax = axes[r][c]
            base = eff["_base"]
            centres = 0.5 * (base.edges[1:] + base.edges[:-1])
            ax.hist(eff["_mu"], bins=base.edges, density=True, color="tab:blue", alpha=0.7,
                    label="trained bank: histogram of mu_i")
            ax.plot(centres, base.density, "k-", lw=1.5,
                    label="i.i.d. N(0,1) banks of the same shape")
            if "_signflip" in eff:
                ax.plot(centres, eff["_signflip"].density, "r--", lw=1.2,
                        label="the same bank, filter signs flipped at random")
            ax.axvline(eff["mean_mu"], color="tab:blue", lw=1, label="mean mu, trained bank")
            ax.axvline(base.mean, color="k", lw=1, ls=":", label="mean mu, random banks")
            ax.set_xlim(-1, 0.2)
            ax.set_title(f"{label} conv{c + 1} ({eff['n_filters']} filters, d={eff['dim']})\n"
                         f"mean mu {eff['mean_mu']:.2f} vs random {base.mean:.2f}", fontsize=9)
            ax.set_xlabel("mu_i (cosine with the pairing filter)", fontsize=8)
            if c == 0:
                ax.set_ylabel("density")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    return save_figure(fig, path, dpi=90)


def pairing_mosaic(banks: Mapping[str, tuple[np.ndarray, Any]], path: Path_) -> str:
    """First-layer filters, each beside its pairing filter, sorted by mu (one panel per model).

    ``banks[label] = (weight (K, C, kh, kw), pairing)`` with ``pairing`` a
    :class:`theory.pairing.Pairing` of that weight.
    """
    plt = pyplot()
    canvases = []
    for label, (w, p) in banks.items():
        k, c, kh, kw = w.shape
        order = np.argsort(p.mu)
        cols = int(np.ceil(np.sqrt(k)))
        rows = int(np.ceil(k / cols))
        pad, label_h = 1, 2  # label_h: rows of canvas kept free above each tile for its text
        tile_w, tile_h = 2 * kw + 3 * pad, kh + pad + label_h
        canvas = np.full((rows * tile_h, cols * tile_w, 3), 1.0)
        for n, i in enumerate(order):
            r0, c0 = (n // cols) * tile_h + label_h, (n % cols) * tile_w + pad
            for s, j in enumerate((i, p.pair[i])):
                f = w[j]
                f = f / (np.abs(f).max() + 1e-12)      # each filter scaled to [-1, 1]
                img = (np.repeat(f, 3, 0) if c == 1 else f[:3]).transpose(1, 2, 0)
                x0 = c0 + s * (kw + pad)
                canvas[r0:r0 + kh, x0:x0 + kw] = 0.5 + 0.5 * img
        canvases.append((label, w, p, order, cols, tile_w, tile_h, label_h, canvas))
    aspect = max(cv.shape[0] / cv.shape[1] for *_, cv in canvases)
    width = 5.2
    fig, axes = plt.subplots(1, len(canvases),
                             figsize=(width * len(canvases), width * aspect + 0.7),
                             squeeze=False, layout="constrained")
    for ax, (label, w, p, order, cols, tile_w, tile_h, label_h, canvas) in zip(axes[0], canvases):
        ax.imshow(canvas, interpolation="nearest")
        for n, i in enumerate(order):
            ax.text((n % cols) * tile_w + tile_w / 2 - 0.5, (n // cols) * tile_h + label_h - 0.6,
                    f"{i}|{p.pair[i]}  mu {p.mu[i]:.2f}", ha="center", va="bottom", fontsize=6)
        ax.set_title(f"{label} conv1: filter i | its pairing filter j, sorted by mu_i\n"
                     f"(each filter scaled to [-1, 1]: black -1, grey 0, white +1; "
                     f"mean mu {p.mean:.2f})", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------- rademacher
def rademacher_ratio(by_L: Sequence[tuple[str, str, Sequence[int], Sequence[float]]],
                     by_din: tuple[str, Sequence[int], Sequence[float]], path: Path_) -> str:
    """R_CReLU / R_ReLU against the sample count L (left) and the first-layer width (right).

    ``by_L``: (label, marker, Ls, ratios) per input distribution; ``by_din``: (label, d_ins,
    ratios).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ax = axes[0]
    for label, marker, Ls, ratios in by_L:
        ax.plot(Ls, ratios, marker=marker, label=label)
    _ratio_range(ax)
    ax.set_xscale("log")
    ax.set_xlabel("number of samples L")
    ax.set_ylabel("R_CReLU / R_ReLU (paired draws)")
    ax.set_title("CReLU/ReLU complexity ratio vs L")
    ax.legend(fontsize=8)
    ax = axes[1]
    label, dins, ratios = by_din
    ax.plot(dins, ratios, "o-", label=label)
    _ratio_range(ax)
    ax.set_xscale("log", base=2)
    ax.set_ylim(0.9, 1.5)
    ax.set_xlabel("d_in (first-layer units)")
    ax.set_ylabel("R_CReLU / R_ReLU")
    ax.set_title("ratio vs d_in (sqrt(d_in) cancels exactly)")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=110)


def _ratio_range(ax: Any) -> None:
    ax.axhline(1.0, color="k", lw=0.8, label="1 (proved lower end: R_ReLU <= R_CReLU)")
    ax.axhline(np.sqrt(2), color="k", lw=0.8, ls="--",
               label="sqrt 2 (proved upper end: R_CReLU <= R_ReLU(2 d_in))")


def rademacher_vs_L(Ls: Sequence[int], values: Mapping[str, Sequence[float]],
                    lows: Mapping[str, Sequence[float]], highs: Mapping[str, Sequence[float]],
                    bounds: Sequence[tuple[str, str, Sequence[float]]], path: Path_) -> str:
    """Complexities of the linear, ReLU, CReLU and AVR classes against L, with the bounds.

    ``values``/``lows``/``highs``: estimate and interval ends per class; ``bounds``: (label,
    line style, values) of each bound drawn as a black or grey line.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    colours = {"linear": "C0", "relu": "C1", "crelu": "C2", "avr": "C3"}
    labels = {"linear": "linear = paper's Theorem 4.1 bound sqrt(d)B R(F)", "relu": "ReLU",
              "crelu": "CReLU", "avr": "AVR"}
    for k in values:
        ax.plot(Ls, values[k], "o-", color=colours.get(k), label=labels.get(k, k), ms=4)
        ax.fill_between(Ls, lows[k], highs[k], color=colours.get(k), alpha=0.12)
    for label, style, ys in bounds:
        colour = "grey" if style == "-" else "k"
        ax.plot(Ls, ys, style, color=colour, lw=1 if style == "-" else 1.5, label=label)
    ax.fill_between([], [], [], color="0.5", alpha=0.2, label="shaded: McDiarmid 95% interval")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of samples L")
    ax.set_ylabel("empirical Rademacher complexity (B = 1, d_in = 1)")
    ax.set_title("Gaussian 2-d inputs, exact sup over u")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------- max-pooling
def maxpool_linear_bound(bounds: Sequence[float], errors: Sequence[float], path: Path_) -> str:
    """Error of the one-step frame algorithm against its bound (b-a)/(b+a), one dot per input."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.3), layout="constrained")
    ax.scatter(bounds, errors, s=12, label="one input (random bank or natural patch)")
    lim = [0, 1]
    ax.plot(lim, lim, "k--", label="the bound: error = (b-a)/(b+a)")
    ax.plot(lim, [0.5 * v for v in lim], "r:", label="0.5 x bound (the negative control)")
    ax.set_xlabel("(b-a)/(b+a) of the selected filters")
    ax.set_ylabel("||x - x'|| / ||x||  (one frame step)")
    ax.legend(fontsize=8)
    ax.set_title("linear map through CReLU + 2x2 max-pool")
    return save_figure(fig, path)


def maxpool_patches(panels: Sequence[Mapping[str, Any]], n: int, path: Path_) -> str:
    """Histograms of relative reconstruction errors of two arms, one panel per filter bank.

    Each panel: ``{"bank", "arms": [(activation, frames, errors), (activation, frames,
    errors)]}``; ``n`` patches per arm.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False,
                             layout="constrained")
    bins = np.logspace(-16, 0.5, 40)
    for ax, panel in zip(axes[0], panels):
        for act, frames, errors in panel["arms"]:
            ax.hist(np.clip(errors, 1e-16, None), bins=bins, alpha=0.6,
                    label=f"{act}: selected filters a frame on {frames}/{n} patches")
        ax.set_xscale("log")
        ax.set_xlabel("relative reconstruction error (exact method; < 1e-16 shown at 1e-16)")
        ax.set_ylabel("patches")
        ax.set_title(f"{panel['bank']}\n+ 2x2 max-pool, {n} natural patches", fontsize=9)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


#: The reconstruction panel's error row shows |reconstruction - original| times this.
ERROR_GAIN = 10.0
_METHOD_LABELS = {"crelu": "CReLU with switches", "relu": "ReLU, same algorithm",
                  "optimisation": "optimisation + TV (M&V)"}


def reconstruction_panel(path: Path_, image: np.ndarray, results: Sequence[Any], title: str,
                         labels: dict[str, str] | None = None) -> str:
    """Original and reconstructions (top row), their errors (bottom row), written atomically.

    ``image``: (C, H, W) in [0, 1], C = 1 or 3; ``results``: objects with ``name``, ``x``,
    ``psnr`` and ``relative_error`` (:func:`verify.deep.reconstruct_all`). The figure's size
    follows the image's aspect ratio.
    """
    plt = pyplot()
    ncol = 1 + len(results)
    h, w = image.shape[1:]
    col_w = 4.0
    img_h = col_w * h / w
    # width: the image columns and the error colour bar; height: two rows of images and
    # their two-line titles, so the rows sit close for any aspect ratio
    fig, axes = plt.subplots(2, ncol, figsize=(col_w * ncol + 1.0, 2 * img_h + 1.9),
                             squeeze=False, layout="compressed")
    show = (lambda a: a[0]) if image.shape[0] == 1 else (lambda a: a.transpose(1, 2, 0))
    kw = {"cmap": "gray", "vmin": 0, "vmax": 1} if image.shape[0] == 1 else {}
    axes[0, 0].imshow(show(image), **kw)
    axes[0, 0].set_title("original")
    axes[1, 0].text(0.5, 0.5, f"bottom row:\n|reconstruction - original|\nx{ERROR_GAIN:g}, "
                    "clipped to [0, 1]\n(max over channels)", ha="center", va="center",
                    fontsize=10, transform=axes[1, 0].transAxes)
    im = None
    for col, r in enumerate(results, start=1):
        xr = np.clip(r.x, 0, 1)
        axes[0, col].imshow(show(xr), **kw)
        name = {**_METHOD_LABELS, **(labels or {})}.get(r.name, r.name)
        err_name = "abs. err" if not np.any(image) else "rel. err"
        axes[0, col].set_title(f"{name}\nPSNR {r.psnr:.1f} dB, "
                               f"{err_name} {r.relative_error:.2g}", fontsize=10)
        err = np.abs(xr - image).max(axis=0)
        im = axes[1, col].imshow(np.clip(ERROR_GAIN * err, 0, 1), cmap="magma", vmin=0, vmax=1)
        axes[1, col].set_title(f"max |error| {err.max():.2g}", fontsize=10)
    for ax in axes.ravel():
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes[1, 1:].tolist(), shrink=0.8, label=f"{ERROR_GAIN:g} x |error|")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, bbox_inches="tight", pad_inches=0.1)


# ----------------------------------------------------------------------------- table, invariance
def table_figure(summary: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path_) -> str:
    """Test error (mean ± std over seeds) against parameter count, and train vs test error.

    ``summary``: :func:`verify.table_exp.summarise` of a results file.
    """
    from verify.configs import TABLE_LABELS, TABLE_VARIANTS

    plt = pyplot()
    fig, axes = plt.subplots(len(summary), 2, figsize=(10, 3.6 * len(summary)), squeeze=False,
                             layout="constrained")
    colours = dict(zip(TABLE_VARIANTS, ("tab:blue", "tab:cyan", "tab:red", "tab:orange",
                                        "tab:green")))
    for row, (data, rows) in zip(axes, summary.items()):
        ax = row[0]
        seen: dict[int, int] = {}
        for v, s in rows.items():
            n_same = seen.get(s["parameters"], 0)            # same size: nudge sideways
            seen[s["parameters"]] = n_same + 1
            ax.errorbar(s["parameters"] * 1.04 ** n_same, 100 * s["test_error_mean"],
                        yerr=100 * s["test_error_std"], fmt="o", capsize=4, color=colours.get(v),
                        label=TABLE_LABELS.get(v, v))
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("test error % (mean ± std)")
        ax.set_title(f"{data}: test error vs size")
        ax.legend(fontsize=8)
        ax = row[1]
        names = list(rows)
        xs = np.arange(len(names))
        ax.bar(xs - 0.2, [100 * rows[v]["train_error_mean"] for v in names], 0.4,
               yerr=[100 * rows[v]["train_error_std"] for v in names], capsize=3,
               label="train error (mean ± std)")
        ax.bar(xs + 0.2, [100 * rows[v]["test_error_mean"] for v in names], 0.4,
               yerr=[100 * rows[v]["test_error_std"] for v in names], capsize=3,
               label="test error (mean ± std)")
        ax.set_xticks(xs, [TABLE_LABELS.get(v, v).replace(", ", "\n") for v in names], fontsize=8)
        ax.set_ylabel("error %")
        ax.set_title(f"{data}: train and test error")
        ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path, dpi=90)


def invariance_figure(table: Mapping[str, Mapping[str, Mapping[str, Any]]], layers: Sequence[str],
                      rate: float, path: Path_) -> str:
    """Layer score against layer, one line per model, one panel per transformation.

    ``table``: :func:`verify.invariance_exp.layer_table` (family -> model -> score, ci);
    ``rate``: the global firing rate G (the score's maximum is 1/G).
    """
    plt = pyplot()
    colours = {"relu": "tab:blue", "crelu": "tab:red", "avr": "tab:green"}
    fig, axes = plt.subplots(1, len(table), figsize=(4.4 * len(table), 3.9), squeeze=False,
                             layout="constrained")
    xs = np.arange(len(layers))
    for ax, (fam, models) in zip(axes[0], table.items()):
        for i, (model, rows) in enumerate(models.items()):
            base = model.split(" ")[0]
            untrained = "untrained" in model
            ci = np.asarray(rows["ci"])
            y = np.asarray(rows["score"])
            dx = (i - (len(models) - 1) / 2) * 0.06
            ax.errorbar(xs + dx, y, yerr=[y - ci[:, 0], ci[:, 1] - y], capsize=3,
                        color=colours.get(base, "k"), ls="--" if untrained else "-",
                        marker="o" if not untrained else "x", alpha=0.55 if untrained else 1.0,
                        label=model)
        ax.axhline(1 / rate, color="0.6", lw=0.8, ls=":", label=f"maximum 1/G = {1 / rate:g}")
        ax.set_xticks(xs, layers)
        ax.set_xlabel("layer")
        ax.set_ylabel("invariance score (top 20 % of units)")
        ax.set_title(f"{fam} (95 % basic bootstrap intervals)", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=90)
