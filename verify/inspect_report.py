"""Write an inspection: ``inspect.json``, ``inspect.md`` and figures, atomically.

The folder is built under a temporary name beside its final path and swapped onto it only when
complete (`verify.atomic.atomic_directory`), so a failed or interrupted run leaves the
previous report as it was. An existing folder is replaced only if it holds nothing but a
previous inspection's files (`check_out_folder`), so ``--out .`` cannot delete anything else.

Figures (in ``figures/``): per layer a filter mosaic with the mutual pairs of
``mu <= PAIR_MARK`` framed in one colour per pair, the mu histogram against both baselines,
the per-frequency singular values where the FFT applies (circular, stride-1 layers), and one
reconstruction panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

#: Mutual pairing filters with mu at most this are framed in the mosaics.
PAIR_MARK = -0.5
#: Most filters shown in a mosaic.
MOSAIC_MAX = 64
OUR_FILES = {"inspect.json", "inspect.md", "figures"}


# ---------------------------------------------------------------------------- atomic folder
def check_out_folder(path: Path) -> None:
    """Refuse an output folder that exists and holds anything but a previous inspection."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"--out {path} exists and is not a folder")
        other = sorted(p.name for p in path.iterdir() if p.name not in OUR_FILES)
        if other:
            raise ValueError(f"--out {path} exists and holds other files ({', '.join(other[:5])}"
                             f"{', ...' if len(other) > 5 else ''}); choose a new or empty "
                             "folder (it is replaced as a whole)")


def slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")
    return s or "layer"


# ---------------------------------------------------------------------------- markdown
def _fmt(v, spec: str = ".4g") -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec)


def render_markdown(report: dict, figures: dict[str, list[str]] | None = None) -> str:
    """The report as Markdown: a table of the layers, their notes, the skipped layers."""
    m = report["model"]
    lines = [f"# crelu inspect: {m['source']}", "",
             f"Format **{m['format']}**, input shape {m['input_shape']}, geometry from "
             f"{m['geometry']}; photos: {', '.join(m['images']) or 'none'}. "
             f"{len(report['layers'])} layer(s) inspected, {len(report['skipped'])} skipped, "
             f"in {m['seconds']} s.", "",
             "| layer | weight | stride / pad / dil | input | frame bounds [a, b] | method "
             "| certified | CReLU injective | ReLU span fraction | mean mu (iid, sign-flip p) "
             "| PSNR dB CReLU / ReLU / optim. |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for L in report["layers"]:
        fb, pr, rc = L["frame_bounds"], L["pairing"], L["reconstruction_psnr_db"]
        geo = (f"{'x'.join(map(str, L['stride']))} / {'x'.join(map(str, L['padding']))} "
               f"{L['padding_mode']} / {'x'.join(map(str, L['dilation']))}")
        pair_s = "—" if pr is None else (f"{_fmt(pr['mean_mu'], '.3f')} "
                                        f"({_fmt(pr['iid_baseline_mean'], '.3f')}, "
                                        f"{_fmt(pr['sign_flip_p'], '.3g')})")
        rec_s = "—" if rc is None else " / ".join(_fmt(rc[k], ".1f")
                                                  for k in ("crelu", "relu", "optimisation"))
        lines.append(f"| `{L['name']}` | {'x'.join(map(str, L['weight_shape']))} | {geo} | "
                     f"{'x'.join(map(str, L['input_shape']))} | [{_fmt(fb['lower'])}, "
                     f"{_fmt(fb['upper'])}] | {fb['method']} | {_fmt(fb['certified'])} | "
                     f"{_fmt(L['crelu_injective'])} | {_fmt(L['relu_injective_fraction'], '.3f')}"
                     f" | {pair_s} | {rec_s} |")
    lines += ["", "Field meanings: docs/howto/inspect.md (Inspect your own network). "
              "'—': not computed (see the layer's notes).", ""]
    if m["notes"]:
        lines += ["## Model notes", ""] + [f"- {n}" for n in m["notes"]] + [""]
    chain = m["image_chain"]
    lines += ["## The convs that read the image", "",
              f"{', '.join(f'`{n}`' for n in chain['layers']) or 'none'} (activations "
              f"{chain['activations']}, pooling {chain['pools']}); the chain ends because "
              f"{chain['ends']}.", ""]
    for L in report["layers"]:
        lines += [f"## `{L['name']}`", ""] + [f"- {n}" for n in L["notes"]] + [""]
        for fig in (figures or {}).get(L["name"], []):
            lines += [f"![{fig}]({fig})", ""]
    if (figures or {}).get("__reconstruction__"):
        lines += ["## Reconstructions", ""]
        lines += [f"![{f}]({f})" for f in figures["__reconstruction__"]] + [""]
    lines += ["## Skipped layers", ""]
    if report["skipped"]:
        lines += [f"- `{s['name']}`: {s['reason']}" for s in report["skipped"]]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- figures
def _mosaic(ax, weight: np.ndarray, pairing) -> str:
    """Tile up to `MOSAIC_MAX` filters into one image; frame the mutual pairs. Returns the
    title."""
    from matplotlib.patches import Rectangle

    k, c, kh, kw = weight.shape
    n = min(k, MOSAIC_MAX)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    gap = 1
    rgb = c == 3
    if rgb:
        caption = "RGB"
        tiles = [w.transpose(1, 2, 0) for w in weight[:n]]
    else:
        ch = int(np.argmax(np.sum(weight ** 2, axis=(0, 2, 3))))
        caption = f"input channel {ch} (largest energy)"
        tiles = [w[ch][..., None] for w in weight[:n]]
    canvas = np.full((rows * (kh + gap) + gap, cols * (kw + gap) + gap, 3 if rgb else 1), np.nan)
    for i, t in enumerate(tiles):
        peak = float(np.abs(t).max()) or 1.0
        r, q = divmod(i, cols)
        canvas[gap + r * (kh + gap): gap + r * (kh + gap) + kh,
               gap + q * (kw + gap): gap + q * (kw + gap) + kw] = t / peak
    if rgb:
        img = np.clip(0.5 + 0.5 * np.nan_to_num(canvas, nan=1.0), 0, 1)
        ax.imshow(img, interpolation="nearest")
    else:
        ax.imshow(canvas[..., 0], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    npairs = 0
    if pairing is not None:
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        for i in range(n):
            j = int(pairing.pair[i])
            if i < j < n and int(pairing.pair[j]) == i and pairing.mu[i] <= PAIR_MARK:
                colour = cmap(npairs % 10)
                npairs += 1
                for f in (i, j):
                    r, q = divmod(f, cols)
                    ax.add_patch(Rectangle((gap + q * (kw + gap) - 0.5 - gap / 2,
                                            gap + r * (kh + gap) - 0.5 - gap / 2),
                                           kw + gap, kh + gap, fill=False, edgecolor=colour,
                                           linewidth=2))
    ax.set_xticks([])
    ax.set_yticks([])
    return (f"{n} of {k} filters ({caption}, each scaled to its peak); {npairs} mutual "
            f"pair(s) with mu <= {PAIR_MARK} framed in matching colours")


def write_figures(folder: Path, insp) -> dict[str, list[str]]:
    """Write the figures into `folder/figures`; return {layer name: [relative paths]}."""
    from verify.figures import pyplot

    plt = pyplot()

    figdir = folder / "figures"
    figdir.mkdir(exist_ok=True)
    out: dict[str, list[str]] = {}

    def save(fig, name: str, layer: str) -> None:
        fig.savefig(figdir / name, dpi=90)
        plt.close(fig)
        out.setdefault(layer, []).append(f"figures/{name}")

    for idx, art in enumerate(insp.layers):
        base = f"{idx:02d}_{slug(art['name'])}"
        fig, ax = plt.subplots(figsize=(5, 5.3), layout="constrained")
        ax.set_title(_mosaic(ax, art["weight"], art.get("pairing")), fontsize=8, wrap=True)
        save(fig, f"{base}_filters.png", art["name"])
        if "pairing" in art:
            p, iid, flip = art["pairing"], art["iid"], art["flip"]
            fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
            ax.hist(p.mu, bins=iid.edges, density=True, alpha=0.6, label=f"{art['name']} "
                    f"(mean {p.mean:.3f})")
            centres = 0.5 * (iid.edges[1:] + iid.edges[:-1])
            ax.plot(centres, iid.density, label=f"i.i.d. Gaussian (mean {iid.mean:.3f})")
            ax.plot(centres, flip.density, label=f"sign-flip (mean {flip.mean:.3f})")
            ax.set_xlabel("mu: cosine with the pairing filter")
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
            save(fig, f"{base}_mu.png", art["name"])
        if "spectrum" in art:
            s = art["spectrum"]
            fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
            for ax, v, t in ((axes[0], s[..., -1], "smallest"), (axes[1], s[..., 0], "largest")):
                im = ax.imshow(np.fft.fftshift(v), cmap="viridis")
                ax.set_title(f"{t} singular value per frequency", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(im, ax=ax, shrink=0.8)
            save(fig, f"{base}_spectrum.png", art["name"])
    if insp.reconstructions and insp.images is not None:
        methods = ("crelu", "relu", "optimisation")
        labels = {"crelu": "CReLU, exact", "relu": "ReLU, same algorithm",
                  "optimisation": "optimisation + TV"}
        rows = [(r, i) for r in insp.reconstructions for i in range(len(insp.images))]
        fig, axes = plt.subplots(len(rows), 4, figsize=(10, 2.6 * len(rows)), squeeze=False,
                                 layout="constrained")
        grey = insp.images.shape[1] == 1

        def show(ax, x):
            x = np.clip(x, 0, 1)
            if grey:
                ax.imshow(x[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(x.transpose(1, 2, 0))

        from verify.deep import psnr

        for row, (r, i) in enumerate(rows):
            x = insp.images[i]
            show(axes[row, 0], x)
            axes[row, 0].set_title(f"{insp.image_names[i]}; through {r['depth']} conv(s)",
                                   fontsize=8)
            for col, m in enumerate(methods, start=1):
                ax = axes[row, col]
                xr = r["recon"][i].get(m)
                if xr is None:
                    ax.text(0.5, 0.5, "not defined\n(see notes)", ha="center", va="center",
                            transform=ax.transAxes, fontsize=8)
                else:
                    show(ax, xr)
                    ax.set_title(f"{labels[m]}: {min(psnr(xr, x), 999):.1f} dB", fontsize=8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.savefig(figdir / "reconstruction.png", dpi=80)
        plt.close(fig)
        out["__reconstruction__"] = ["figures/reconstruction.png"]
    return out


def write_inspection(out: Path, insp, figures: bool = True) -> None:
    """`out/inspect.json`, `out/inspect.md` and (optionally) the figures, atomically."""
    from verify.atomic import atomic_directory

    check_out_folder(out)
    with atomic_directory(out) as stage:
        figs = write_figures(stage, insp) if figures else {}
        (stage / "inspect.json").write_text(json.dumps(insp.report, indent=2, allow_nan=False)
                                            + "\n", encoding="utf-8")
        (stage / "inspect.md").write_text(render_markdown(insp.report, figs), encoding="utf-8")
