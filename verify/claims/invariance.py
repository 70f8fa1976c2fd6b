"""Invariance scores (paper Sec. 4.2; Goodfellow et al. 2009): CReLU against ReLU per layer.

Data: :mod:`verify.invariance_exp`. The quick profile reads the committed per-unit results
(``verify/results/invariance.json``, computed from the shipped weights); ``--profile full``
retrains the suite models (shared with the pairing claims) and recomputes them.

Statistics, fixed before any run (docs/theory/invariance.md):

* layer score = mean invariance score of the top 20 % of a layer's units (1 % firing rate);
* uncertainty: two-stage bootstrap (units with replacement, then each unit's top images with
  replacement), ``BOOT`` draws per model and layer, independent between models; intervals
  are *basic* bootstrap intervals (``2 e - quantiles``), which undo the upward bias the
  top-fraction mean acquires under resampling;
* ``invariance-crelu-above-relu-*``: per layer the difference
  :math:`D_l = S^{\\rm CReLU}_l - S^{\\rm ReLU}_l`, a ``LEVEL`` = 99 % interval per layer
  (Bonferroni over the 5 layers, about 95 % for the family). pass: every interval lies above
  0 (the paper: higher at every layer); fail: some interval lies below 0; else inconclusive.
  Negative control: the ReLU model against itself (a second, independent bootstrap), which
  no honest check may call "higher at every layer".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from theory.invariance import invariance_scores, translations
from verify import figures
from verify.claims.base import Claim, Context, Outcome, status_from

BOOT = 2000
LEVEL = 0.99
FIG_LEVEL = 0.95
_CACHE: dict[tuple[str, str, int], dict[str, Any]] = {}


# ----------------------------------------------------------------------------- decision rules
def compare_layers(est_a: list[float], draws_a: list[np.ndarray], est_b: list[float],
                   draws_b: list[np.ndarray], layers: list[str], level: float = LEVEL
                   ) -> tuple[str, dict[str, Any]]:
    """Is ``a`` above ``b`` at every layer? Basic bootstrap intervals of ``a - b`` per layer.

    pass: every interval lies above 0; fail: some interval lies below 0; inconclusive
    otherwise. ``draws_*`` are independent bootstrap draws of the layer scores.
    """
    from verify.invariance_exp import basic_interval

    diffs, cis = [], []
    for ea, da, eb, db in zip(est_a, draws_a, est_b, draws_b):
        d = float(ea - eb)
        diffs.append(d)
        cis.append(basic_interval(d, np.asarray(da) - np.asarray(db), level))
    above = [lo > 0 for lo, _ in cis]
    below = [hi < 0 for _, hi in cis]
    measured = {"layers": layers, "difference": diffs, f"difference_ci{round(100 * level)}": cis,
                "layers_above_0": [l for l, a in zip(layers, above) if a],
                "layers_below_0": [l for l, b in zip(layers, below) if b]}
    if any(below):
        return "fail", measured
    if all(above):
        return "pass", measured
    return "inconclusive", measured


# ----------------------------------------------------------------------------- data
def _state(ctx: Context) -> dict[str, Any]:
    """Results (committed or recomputed), their bootstrap table, the control draws, figure."""
    from verify import invariance_exp as ie

    key = (ctx.profile, str(ctx.out_dir.resolve()), ctx.seed)
    if key in _CACHE:
        return _CACHE[key]
    if ctx.profile == "full":
        path = ctx.out_dir / "results" / "invariance.json"
        result = ie.run_invariance(retrain=True, weights_dir=ctx.out_dir / "weights",
                                   seed=ctx.seed, out=path, say=lambda _m: None)
    else:
        path = ie.RESULTS_FILE
        result = ie.read_results(path)
        ie.check_fresh(result)
    for needed in ("relu", "crelu"):
        if needed not in result["models"]:
            raise ValueError(f"{path}: no results for the {needed} model")
    rng = ctx.rng("invariance-bootstrap")
    table = ie.layer_table(result, rng, reps=BOOT, level=FIG_LEVEL)
    control = ie.layer_table({**result, "models": {"relu": result["models"]["relu"]}},
                             ctx.rng("invariance-control"), reps=BOOT, level=FIG_LEVEL)
    fig = figures.invariance_figure(table, result["layers"], result["rate"],
                                    ctx.figures_dir / "invariance-per-layer.png")
    state = {"result": result, "table": table, "control": control, "figure": fig,
             "source": ctx.report_path(path), "regenerate": ie.REGENERATE}
    _CACHE[key] = state
    return state


def _provenance(state: dict[str, Any]) -> dict[str, Any]:
    r = state["result"]
    return {"data": state["source"], "weights": r["weights"], "n_images": r["n_images"],
            "rate": r["rate"], "top_fraction": r["top_fraction"], "bootstrap_draws": BOOT,
            "regenerate": state["regenerate"]}


def _rows(state, family: str, model: str, control: bool = False):
    rows = (state["control"] if control else state["table"])[family][model]
    return rows["score"], rows["draws"]


# ----------------------------------------------------------------------------- claims
def _above_claim(family: str) -> Claim:
    def check(ctx: Context) -> Outcome:
        st = _state(ctx)
        ec, dc = _rows(st, family, "crelu")
        er, dr = _rows(st, family, "relu")
        status, measured = compare_layers(ec, dc, er, dr, st["result"]["layers"])
        measured.update({"crelu_layer_scores": ec, "relu_layer_scores": er,
                         "crelu_ci95": st["table"][family]["crelu"]["ci"],
                         "relu_ci95": st["table"][family]["relu"]["ci"], **_provenance(st)})
        for name in st["table"][family]:
            if "untrained" in name or name == "avr":
                measured[f"{name}_layer_scores"] = st["table"][family][name]["score"]
        return Outcome(status, measured, [st["figure"]])

    def control(ctx: Context) -> Outcome:
        st = _state(ctx)
        e1, d1 = _rows(st, family, "relu")
        e2, d2 = _rows(st, family, "relu", control=True)
        status, measured = compare_layers(e1, d1, e2, d2, st["result"]["layers"])
        return Outcome(status, measured)

    return Claim(
        id=f"invariance-crelu-above-relu-{family}",
        kind="replication",
        statement=(f"Under {family}, the CReLU network's layer invariance scores (Goodfellow et al. "
                   "2009: 1 % firing rate, top 20 % of units, a unit = a channel at the centre of "
                   "the map) are higher than the ReLU network's at every layer (conv1, pool1, "
                   "conv2, pool2, conv3), Fashion-MNIST models of the suite."),
        source="Shang et al. 2016, Sec. 4.2 (invariance scores); docs/theory/invariance.md",
        docs="theory/invariance.md#decision-rules-fixed-before-the-run",
        threshold=("pass iff the 99 % basic bootstrap interval of S_CReLU - S_ReLU lies above 0 "
                   "at every one of the 5 layers; fail iff it lies below 0 at some layer; "
                   "inconclusive otherwise"),
        tolerance_rationale=("two-stage bootstrap over units and each unit's 20 top images "
                             f"({BOOT} draws); 99 % per layer = Bonferroni over 5 layers for a "
                             "family-wise level of about 95 %; no effect-size margin: the "
                             "paper's claim is the sign of the difference"),
        check=check, negative_control=control,
        negative_control_description=("the ReLU model against itself (an independent bootstrap "
                                      "of the same per-unit data): the same rule must not call "
                                      "it higher at every layer"),
    )


def pooling_status(state: dict[str, Any], family: str = "translation",
                   control: bool = False) -> tuple[str, dict[str, Any]]:
    """Scores jump after pooling: S(pool_l) - S(conv_l) > 0 for l = 1, 2, both models.

    pass: all four 99 % basic intervals above 0; fail: one below 0; else inconclusive. The
    control compares conv_l with an independent bootstrap of conv_l itself.
    """
    layers = state["result"]["layers"]
    est_a, dr_a, est_b, dr_b, names = [], [], [], [], []
    for model in ("relu", "crelu"):
        rows = state["table"][family][model]
        other = (state["control"] if model == "relu" else state["table"])[family][model]
        for conv, pool in (("conv1", "pool1"), ("conv2", "pool2")):
            i, j = layers.index(conv), layers.index(pool)
            if control:
                if model != "relu":
                    continue
                est_a.append(rows["score"][i])
                dr_a.append(rows["draws"][i])
                est_b.append(other["score"][i])
                dr_b.append(other["draws"][i])
                names.append(f"{model} {conv} vs {conv}")
            else:
                est_a.append(rows["score"][j])
                dr_a.append(rows["draws"][j])
                est_b.append(rows["score"][i])
                dr_b.append(rows["draws"][i])
                names.append(f"{model} {pool} - {conv}")
    return compare_layers(est_a, dr_a, est_b, dr_b, names)


def _pooling_check(ctx: Context) -> Outcome:
    st = _state(ctx)
    status, measured = pooling_status(st)
    measured.update(_provenance(st))
    return Outcome(status, measured, [st["figure"]])


def _pooling_control(ctx: Context) -> Outcome:
    status, measured = pooling_status(_state(ctx), control=True)
    return Outcome(status, measured)


# ----------------------------------------------------------------------------- theorem check
def _dots(n: int = 2000, size: int = 9) -> torch.Tensor:
    """Black images with one dot each; positions cycle over all pixels, distinct intensities."""
    x = torch.zeros(n, 1, size, size, dtype=torch.float64)
    pos = np.arange(n) % (size * size)
    x[np.arange(n), 0, pos // size, pos % size] = torch.as_tensor(0.5 + 0.5 * (np.arange(n) + 1) / (n + 1))
    return x


def _constructed(swap: bool) -> Outcome:
    """Global mean must score 1/G exactly, the centre pixel 0 exactly (circular shifts)."""
    def units(b: torch.Tensor) -> torch.Tensor:
        mean = b.mean(dim=(2, 3))
        pixel = b[:, 0, b.shape[2] // 2, b.shape[3] // 2][:, None]
        return torch.cat([pixel, mean] if swap else [mean, pixel], dim=1)

    res = invariance_scores(units, _dots(), translations(3, mode="circular"))
    ok = res.score[0] == 1.0 / res.global_rate[0] and res.score[1] == 0.0
    return Outcome(status_from(ok), {
        "scores": res.score.tolist(), "one_over_G": (1 / res.global_rate).tolist(),
        "local_rates": res.local_rate.tolist(), "units": ["pixel", "global mean"] if swap
        else ["global mean", "pixel"]})


CLAIMS = [
    Claim(
        id="invariance-score-extremes",
        kind="theorem",
        statement=("The invariance score S = L/G lies in [0, 1/G]; a unit exactly invariant to "
                   "the transformations (the global mean of an image under circular shifts) "
                   "scores exactly 1/G, a unit whose preferred inputs all stop firing when "
                   "transformed (a single pixel, on one-dot images) scores exactly 0."),
        source="our derivation from the definition of Goodfellow et al. 2009 "
               "(docs/theory/invariance.md)",
        docs="theory/invariance.md#the-invariance-score-goodfellow-le-saxe-lee-ng-nips-2009",
        threshold="exact equality (firing counts are integers; the global mean of a shifted "
                  "one-dot image is computed exactly)",
        tolerance_rationale="no rounding enters: sums of one non-zero value and zeros are exact",
        check=lambda ctx: _constructed(False),
        negative_control=lambda ctx: _constructed(True),
        negative_control_description=("the two units swapped (the pixel unit is required to "
                                      "score 1/G and the global mean 0)"),
    ),
    _above_claim("translation"),
    _above_claim("rotation"),
    _above_claim("scaling"),
    Claim(
        id="invariance-pooling-raises-translation",
        kind="replication",
        statement=("Translation invariance scores jump after max-pooling: S(pool1) > S(conv1) and "
                   "S(pool2) > S(conv2), in both the ReLU and the CReLU network."),
        source=("Shang et al. 2016, Sec. 4.2 ('scores jump after pooling'); "
                "docs/theory/invariance.md"),
        docs="theory/invariance.md#decision-rules-fixed-before-the-run",
        threshold=("pass iff all four 99 % basic bootstrap intervals of S(pool) - S(conv) lie "
                   "above 0; fail iff one lies below 0; inconclusive otherwise"),
        tolerance_rationale=("the same two-stage bootstrap as the per-layer comparison; 99 % per "
                             "comparison (Bonferroni over 4); units of different layers are "
                             "resampled independently"),
        check=_pooling_check, negative_control=_pooling_control,
        negative_control_description=("each conv layer against itself (independent bootstrap "
                                      "of the ReLU model): no jump may be found"),
    ),
]
