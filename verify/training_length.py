"""Effect versus training length: pairing, invariance and the train-test gap at checkpoints.

The suite models (``verify.train.SUITE``: the ReLU and the CReLU network on Fashion-MNIST)
save checkpoints while they train (``TrainConfig.checkpoints``: after 1/8, 1 and 3 epochs,
and the final weights), written by ``crelu train suite`` to ``verify/weights/checkpoints/``.
For the initial weights (step 0, rebuilt from the seed) and every checkpoint we measure

* the **pairing statistic** of conv1-conv3 (:func:`theory.pairing.pairing`): the bank mean
  :math:`\\bar\\mu`, the i.i.d. Gaussian baseline (:func:`~theory.pairing.random_pairing_baseline`)
  with its 95 % interval and tail probability, the pairing strength
  :math:`r = (\\bar\\mu - E\\bar\\mu_{\\rm rand}) / (-1 - E\\bar\\mu_{\\rm rand})`, and the
  sign-flip baseline (:func:`~theory.pairing.sign_flip_baseline`, the same bank with random
  filter signs) with its 95 % interval and p-value;
* the **invariance scores** of :mod:`verify.invariance_exp` (the same images, firing rate,
  transformations and layers as the invariance claims), per layer with 95 % basic bootstrap
  intervals, and the CReLU - ReLU difference per layer with 99 % intervals (the claims'
  per-layer level);
* the **train-test gap**: training and test accuracy (recorded in each checkpoint's card,
  measured in eval mode on the whole training set and the whole test set) and their
  difference (= test error - train error).

The numbers go to ``verify/results/training_length.json`` with the sha256 of every weight set
they come from (:func:`verify.invariance_exp.weights_digest`); one figure per quantity is
written by the command (never by the test suite)::

    crelu train-length --out verify/results/training_length.json --figures docs/figures

(the command is :mod:`verify.train_length_cmd`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from theory.pairing import pairing, random_pairing_baseline, sign_flip_baseline
from verify.figures import pyplot, save_figure

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "training_length.json"
REGENERATE = ("crelu train-length --out verify/results/training_length.json "
              "--figures docs/figures")
MODELS = {"relu": "relu-fashion-mnist", "crelu": "crelu-fashion-mnist"}
REPS = 1000          # random banks / sign patterns per pairing baseline
BOOT = 2000          # bootstrap draws per invariance layer score
LEVEL = 0.95         # intervals of single quantities
DIFF_LEVEL = 0.99    # per-layer intervals of CReLU - ReLU (as the invariance claims)
FIGURES = {"pairing": "training-length-pairing.png",
           "invariance": "training-length-invariance.png",
           "gap": "training-length-gap.png"}


# ----------------------------------------------------------------------------- points
def checkpoint_points(stem: str, weights_dir: str | os.PathLike | None = None
                      ) -> list[dict[str, Any]]:
    """The initial model and every checkpoint of a suite model, in step order.

    Returns dicts with ``step``, ``epoch``, ``label``, ``file`` (relative to the weights
    folder; ``None`` for the initial model), ``model`` and ``card``.
    """
    from verify.train import WEIGHTS_DIR, initial_model, load_trained

    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    model, card = load_trained(folder / f"{stem}.safetensors")
    entries = card.get("checkpoints") or []
    if not entries:
        raise ValueError(f"{folder / stem}.json lists no checkpoints; train the suite with "
                         "`crelu train suite` (its configs save them)")
    points = [{"step": 0, "epoch": 0.0, "label": "init", "file": None,
               "model": initial_model(card).eval(), "card": card}]
    for e in entries:
        if e["file"] == f"{stem}.safetensors":
            m, c = model, card
        else:
            m, c = load_trained(folder / e["file"])
        points.append({"step": int(e["step"]), "epoch": float(e["epoch"]),
                       "label": _epoch_label(float(e["epoch"])), "file": e["file"],
                       "model": m, "card": c})
    return points


def _epoch_label(epoch: float) -> str:
    if epoch < 1:
        return f"1/{round(1 / epoch)} ep" if epoch > 0 else "init"
    return f"{epoch:g} ep"


# ----------------------------------------------------------------------------- statistics
def pairing_stats(weight, seed: int, reps: int = REPS) -> dict[str, Any]:
    """Pairing of one bank against the i.i.d. and the sign-flip baseline."""
    p = pairing(weight)
    iid = random_pairing_baseline(p.n_filters, p.dim, repetitions=reps, seed=seed, level=LEVEL)
    sf = sign_flip_baseline(weight, repetitions=reps, seed=seed + 1, level=LEVEL)
    return {"n_filters": p.n_filters, "dim": p.dim, "mean_mu": p.mean,
            "iid_mean": iid.mean, "iid_interval95": list(iid.interval),
            "iid_tail_p": iid.tail_probability(p.mean),
            "strength_r": (p.mean - iid.mean) / (-1.0 - iid.mean),
            "signflip_mean": sf.mean, "signflip_interval95": list(sf.interval),
            "signflip_p": sf.tail_probability(p.mean)}


def accuracies(model, card: dict[str, Any]) -> tuple[float, float]:
    """(test, train) accuracy of ``model`` on the data its card names, with the card's
    normalisation and the same seeded subsets (the whole sets for the suite)."""
    from verify.train import evaluate, load_dataset

    data = load_dataset(card["data"], seed=card["seed"], n_train=card["n_train"],
                        n_test=card["n_test"])
    norm = card["normalisation"]

    def std(x: np.ndarray) -> np.ndarray:
        return ((x - norm["mean"]) / norm["std"]).astype(np.float32)

    return evaluate(model, std(data.x_test), data.y_test), evaluate(model, std(data.x_train),
                                                                     data.y_train)


def run_training_length(weights_dir: str | os.PathLike | None = None, seed: int = 0,
                        out: str | os.PathLike | None = None, reps: int = REPS,
                        boot: int = BOOT, n_images: int | None = None,
                        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every point of :func:`checkpoint_points` for the ReLU and the CReLU model.

    ``n_images`` (default :data:`verify.invariance_exp.N_IMAGES`) natural images for the
    invariance scores; ``reps`` / ``boot`` the pairing repetitions and bootstrap draws.
    """
    from verify import invariance_exp as ie
    from verify.train import SUITE

    t0 = time.perf_counter()
    images = ie.natural_images(seed, n_images or ie.N_IMAGES)
    rng = np.random.default_rng([seed, 15])
    result: dict[str, Any] = {
        "regenerate": REGENERATE, "seed": seed, "pairing_repetitions": reps,
        "bootstrap_draws": boot, "level": LEVEL, "difference_level": DIFF_LEVEL,
        "invariance": {"n_images": int(images.shape[0]), "rate": ie.RATE,
                       "top_fraction": ie.TOP_FRACTION, "layers": list(ie.LAYERS),
                       "families": list(ie.FAMILIES)},
        "configs": {stem: _config_dict(SUITE[stem]) for stem in MODELS.values() if stem in SUITE},
        "models": {}, "_draws": {},
    }
    for short, stem in MODELS.items():
        rows = []
        for k, pt in enumerate(checkpoint_points(stem, weights_dir)):
            t1 = time.perf_counter()
            model, card = pt["model"], pt["card"]
            if pt["step"] == 0:
                test_acc, train_acc = accuracies(model, card)
            else:
                test_acc, train_acc = card["test_accuracy"], card["train_accuracy"]
            row: dict[str, Any] = {
                "step": pt["step"], "epoch": pt["epoch"], "label": pt["label"],
                "file": pt["file"], "weights_sha256": ie.weights_digest(model),
                "test_accuracy": test_acc, "train_accuracy": train_acc,
                "gap": train_acc - test_acc,
                "pairing": [pairing_stats(w, seed=int(rng.integers(2**31)), reps=reps)
                            for w in model.conv_weights()],
            }
            units = ie.score_model(model, card, images)
            table = ie.layer_table({"models": {short: units}, "layers": list(ie.LAYERS),
                                    "rate": ie.RATE, "top_fraction": ie.TOP_FRACTION},
                                   rng, reps=boot, level=LEVEL)
            row["invariance"] = {fam: {"score": t[short]["score"], "ci95": t[short]["ci"],
                                       "n_valid": t[short]["n_valid"]}
                                 for fam, t in table.items()}
            result["_draws"][short, k] = {fam: t[short]["draws"] for fam, t in table.items()}
            rows.append(row)
            say(f"[train-length] {short} {pt['label']}: test {test_acc:.4f}, train "
                f"{train_acc:.4f}, conv1 mean mu {row['pairing'][0]['mean_mu']:.3f} "
                f"(sign-flip p {row['pairing'][0]['signflip_p']:.3f}), "
                f"{time.perf_counter() - t1:.1f} s")
        result["models"][short] = rows
    result["invariance_difference"] = _differences(result)
    del result["_draws"]
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        write_results(result, out)
    return result


def _config_dict(cfg) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["checkpoints"] = list(d["checkpoints"])
    return d


def _differences(result: dict[str, Any]) -> list[dict[str, Any]]:
    """CReLU - ReLU layer scores at matching checkpoints, basic bootstrap intervals."""
    from verify.invariance_exp import basic_interval

    out = []
    relu, crelu = result["models"]["relu"], result["models"]["crelu"]
    for k, (r, c) in enumerate(zip(relu, crelu)):
        if r["step"] != c["step"]:
            raise ValueError(f"ReLU and CReLU checkpoints differ: step {r['step']} vs {c['step']}")
        entry: dict[str, Any] = {"step": r["step"], "label": r["label"]}
        for fam in result["invariance"]["families"]:
            d = np.asarray(c["invariance"][fam]["score"]) - np.asarray(r["invariance"][fam]["score"])
            dc, dr = result["_draws"]["crelu", k][fam], result["_draws"]["relu", k][fam]
            cis = [basic_interval(float(di), np.asarray(a) - np.asarray(b), DIFF_LEVEL)
                   for di, a, b in zip(d, dc, dr)]
            entry[fam] = {"difference": d.tolist(), f"ci{round(100 * DIFF_LEVEL)}": cis,
                          "layers_above_0": sum(lo > 0 for lo, _ in cis),
                          "layers_below_0": sum(hi < 0 for _, hi in cis)}
        out.append(entry)
    return out


# ----------------------------------------------------------------------------- files
def write_results(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the records as JSON (parents created; temp file, then rename)."""
    from verify.results_io import write_results_json

    return write_results_json(result, path)


def read_results(path: str | os.PathLike = RESULTS_FILE) -> dict[str, Any]:
    """Read results written by :func:`run_training_length` (clear errors if missing/corrupt)."""
    from verify.results_io import read_results_json

    return read_results_json(path, "models", "training-length", REGENERATE)


def check_fresh(result: dict[str, Any], weights_dir: str | os.PathLike | None = None) -> None:
    """Raise if any stored weights hash differs from that of the weights in ``weights_dir``."""
    from verify.invariance_exp import weights_digest

    for short, stem in MODELS.items():
        rows = result["models"].get(short)
        if not rows:
            raise ValueError(f"the training-length results have no {short!r} model")
        points = checkpoint_points(stem, weights_dir)
        if [p["step"] for p in points] != [r["step"] for r in rows]:
            raise ValueError(f"the checkpoints of {stem} ({[p['step'] for p in points]}) are not "
                             f"those of the stored results; regenerate them with `{REGENERATE}`")
        for p, r in zip(points, rows):
            if weights_digest(p["model"]) != r["weights_sha256"]:
                raise ValueError(f"the stored training-length results of {stem} step "
                                 f"{r['step']} were computed from other weights; regenerate "
                                 f"them with `{REGENERATE}`")


# ----------------------------------------------------------------------------- figures
_COLOURS = {"relu": "tab:blue", "crelu": "tab:red"}


def _xs(rows: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
    return np.arange(len(rows)), [r["label"] for r in rows]


def pairing_figure(result: dict[str, Any], path: str | os.PathLike) -> str:
    """Mean mu per conv layer against training length, with both baselines as bands."""
    plt = pyplot()

    n_layers = len(next(iter(result["models"].values()))[0]["pairing"])
    fig, axes = plt.subplots(1, n_layers, figsize=(4.6 * n_layers, 3.9), squeeze=False)
    for j, ax in enumerate(axes[0]):
        for i, (short, rows) in enumerate(result["models"].items()):
            xs, labels = _xs(rows)
            dx = (i - 0.5) * 0.08
            st = [r["pairing"][j] for r in rows]
            col = _COLOURS.get(short, "k")
            sf = np.asarray([s["signflip_interval95"] for s in st])
            ax.fill_between(xs + dx, sf[:, 0], sf[:, 1], color=col, alpha=0.15,
                            label=f"{short}: same bank, random signs (95 %)")
            ax.plot(xs + dx, [s["mean_mu"] for s in st], "o-", color=col,
                    label=f"{short}: trained bank")
        iid = np.asarray([r["pairing"][j]["iid_interval95"] for r in rows])
        ax.fill_between(xs, iid[:, 0], iid[:, 1], color="0.5", alpha=0.25,
                        label="i.i.d. Gaussian bank (95 %)")
        ax.set_xticks(xs, labels)
        ax.set_xlabel("training length (epochs)")
        ax.set_ylabel("mean pairing cosine  mean mu")
        ax.set_title(f"conv{j + 1}: pairing vs training length", fontsize=10)
        if j == 0:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def invariance_figure(result: dict[str, Any], path: str | os.PathLike) -> str:
    """Layer invariance scores (95 % intervals) against training length; families x layers."""
    plt = pyplot()

    fams, layers = result["invariance"]["families"], result["invariance"]["layers"]
    fig, axes = plt.subplots(len(fams), len(layers), figsize=(3.1 * len(layers), 2.7 * len(fams)),
                             squeeze=False, sharey="row")
    for a, fam in enumerate(fams):
        for b, layer in enumerate(layers):
            ax = axes[a][b]
            for i, (short, rows) in enumerate(result["models"].items()):
                xs, labels = _xs(rows)
                y = np.asarray([r["invariance"][fam]["score"][b] for r in rows])
                ci = np.asarray([r["invariance"][fam]["ci95"][b] for r in rows])
                ax.errorbar(xs + (i - 0.5) * 0.1, y, yerr=[y - ci[:, 0], ci[:, 1] - y],
                            fmt="o-", capsize=2, color=_COLOURS.get(short, "k"), label=short)
            ax.set_xticks(xs, labels, fontsize=7)
            ax.set_title(f"{fam}, {layer}", fontsize=9)
            if b == 0:
                ax.set_ylabel("invariance score")
            if a == len(fams) - 1:
                ax.set_xlabel("training length")
            if a == 0 and b == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Invariance score (top 20 % of units, 95 % basic bootstrap intervals) vs "
                 "training length", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def gap_figure(result: dict[str, Any], path: str | os.PathLike) -> str:
    """Train and test accuracy, and their gap, against training length."""
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for short, rows in result["models"].items():
        xs, labels = _xs(rows)
        col = _COLOURS.get(short, "k")
        ax1.plot(xs, [100 * r["train_accuracy"] for r in rows], "o--", color=col,
                 label=f"{short} train")
        ax1.plot(xs, [100 * r["test_accuracy"] for r in rows], "o-", color=col,
                 label=f"{short} test")
        ax2.plot(xs, [100 * r["gap"] for r in rows], "o-", color=col, label=short)
    for ax in (ax1, ax2):
        ax.set_xticks(xs, labels)
        ax.set_xlabel("training length (epochs)")
        ax.legend(fontsize=8)
    ax1.set_ylabel("accuracy %")
    ax1.set_title("Fashion-MNIST accuracy vs training length", fontsize=10)
    ax2.axhline(0, color="0.6", lw=0.8)
    ax2.set_ylabel("train - test accuracy (points)")
    ax2.set_title("train-test gap vs training length", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def figures(result: dict[str, Any], folder: str | os.PathLike) -> list[str]:
    """Write the three figures (:data:`FIGURES`) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [pairing_figure(result, folder / FIGURES["pairing"]),
            invariance_figure(result, folder / FIGURES["invariance"]),
            gap_figure(result, folder / FIGURES["gap"])]


def markdown(result: dict[str, Any]) -> str:
    """The numbers as markdown: accuracy, gap, conv1 pairing, layer-wise invariance sign."""
    lines = ["| model | length | test acc. | train acc. | gap (pts) | conv1 mean mu | i.i.d. "
             "mean | r | sign-flip mean | sign-flip p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for short, rows in result["models"].items():
        for r in rows:
            p = r["pairing"][0]
            lines.append(f"| {short} | {r['label']} | {r['test_accuracy']:.4f} | "
                         f"{r['train_accuracy']:.4f} | {100 * r['gap']:.2f} | {p['mean_mu']:.3f} | "
                         f"{p['iid_mean']:.3f} | {p['strength_r']:.2f} | {p['signflip_mean']:.3f} | "
                         f"{p['signflip_p']:.3f} |")
    lines += ["", "CReLU - ReLU invariance, layers whose 99 % interval lies above / below 0 "
              f"(of {len(result['invariance']['layers'])}):", "",
              "| length | " + " | ".join(result["invariance"]["families"]) + " |",
              "|---|" + "---|" * len(result["invariance"]["families"])]
    for d in result["invariance_difference"]:
        cells = [f"{d[f]['layers_above_0']} above / {d[f]['layers_below_0']} below"
                 for f in result["invariance"]["families"]]
        lines.append(f"| {d['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
