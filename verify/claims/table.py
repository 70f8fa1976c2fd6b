"""The classification table (paper Table 1, Sec. 4.1) at small scale: five variants, 3 seeds.

Data: :mod:`verify.table_exp`. The quick profile reads the committed per-run records
(``verify/results/table.json``); ``--profile full`` trains every (data set, variant, seed)
again (:data:`verify.table_exp.TABLE_CONFIGS`) into the report folder and checks those.

Decision rules, fixed before any run (docs/theory/invariance.md, "The classification table"):
with :math:`n` seeds per variant, means :math:`m`, standard deviations :math:`s`
(``ddof=1``) and the Welch interval
:math:`\\bar a - \\bar b \\pm t_{0.975,\\nu}\\sqrt{s_a^2/n_a + s_b^2/n_b}`
(Welch-Satterthwaite :math:`\\nu`):

* ``table-<data>-crelu-half-matches-baseline``: pass iff CReLU-half has fewer parameters
  than the ReLU baseline and :math:`m_{\\rm half} \\le m_{\\rm base} + s_{\\rm base}` (the
  paper's "within its standard deviation"); fail iff it has not fewer parameters or the
  Welch interval of :math:`m_{\\rm half} - m_{\\rm base} - s_{\\rm base}` lies above 0;
  inconclusive otherwise. Control: the untrained CReLU-half (same seeds).
* ``table-<data>-crelu-gap-below-relu``: gap = test error - train error per seed; pass iff
  the 95 % Welch interval of gap(CReLU) - gap(ReLU) lies below 0; fail iff above 0;
  inconclusive otherwise. Control: ReLU against itself.
* ``table-<data>-crelu-beats-relu``: the same rule on the test errors. Control: ReLU against
  itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from verify import figures, freshness
from verify.claims.base import Claim, Context, Outcome

DATASETS = ("fashion-mnist", "photos-grey")
#: The planted effect of the sign claims, in standard deviations of the ReLU values.
PLANTED_SHIFT = 4.0
#: Input channels a table data set may have (grey or colour).
_CHANNELS = (1, 3)
#: Input sizes of the data sets (28x28 Fashion-MNIST and photo crops, 32x32 CIFAR-10).
_SIZES = (28, 32)
_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


# ----------------------------------------------------------------------------- statistics
def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, list[float]]:
    """Difference of means ``mean(a) - mean(b)`` and its Welch t interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"need at least 2 seeds per variant; got {a.size} and {b.size}")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    d = float(a.mean() - b.mean())
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return d, [d, d]
    nu = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    t = float(stats.t.ppf((1 + level) / 2, nu))
    return d, [d - t * se, d + t * se]


def sign_status(a: np.ndarray, b: np.ndarray, label: str) -> tuple[str, dict[str, Any]]:
    """pass iff the 95 % Welch interval of mean(a) - mean(b) lies below 0; fail iff above 0."""
    d, (lo, hi) = welch_interval(a, b)
    measured = {f"{label}_difference": d, f"{label}_difference_ci95": [lo, hi],
                "a_values": np.asarray(a).tolist(), "b_values": np.asarray(b).tolist()}
    if hi < 0:
        return "pass", measured
    if lo > 0:
        return "fail", measured
    return "inconclusive", measured


def matches_status(half: np.ndarray, base: np.ndarray, params_half: int,
                   params_base: int) -> tuple[str, dict[str, Any]]:
    """CReLU-half within the baseline's std with fewer parameters (see module docstring)."""
    half, base = np.asarray(half, float), np.asarray(base, float)
    s_base = float(base.std(ddof=1))
    excess, (lo, hi) = welch_interval(half, base)
    excess, lo, hi = excess - s_base, lo - s_base, hi - s_base
    measured = {"test_error_half_mean": half.mean(), "test_error_half_std": half.std(ddof=1),
                "test_error_base_mean": base.mean(), "test_error_base_std": s_base,
                "excess_over_base_plus_std": excess, "excess_ci95": [lo, hi],
                "parameters_half": params_half, "parameters_base": params_base,
                "fewer_parameters": params_half < params_base}
    if params_half >= params_base or lo > 0:
        return "fail", measured
    if excess <= 0:
        return "pass", measured
    return "inconclusive", measured


# ----------------------------------------------------------------------------- data
def _state(ctx: Context) -> dict[str, Any]:
    from verify import table_exp as te

    key = (ctx.profile, str(ctx.out_dir.resolve()))
    if key in _CACHE:
        return _CACHE[key]
    if ctx.profile == "full":
        path = ctx.out_dir / "results" / "table.json"
        result = te.run_table(data=DATASETS, progress=False, out=path, say=lambda _m: None)
    else:
        path = te.RESULTS_FILE
        result = te.read_results(path)
        freshness.check(result, freshness.table_expected(result), path=path,
                        regenerate=te.REGENERATE)
    labels_consistent(result, path)
    summary = te.summarise(result)
    fig = figures.table_figure(summary, ctx.figures_dir / "classification-table.png")
    state = {"result": result, "figure": fig, "source": ctx.report_path(path),
             "summary": summary, "markdown": te.markdown_table(result),
             "regenerate": te.REGENERATE}
    _CACHE[key] = state
    return state


def labels_consistent(result: dict[str, Any], path: Any) -> None:
    """Raise unless every run's parameter count is its labelled variant's (a mislabelled
    table: ``crelu`` and ``relu`` swapped, say). ``relu`` and ``avr`` share their count."""
    from verify.models import AllConvNet, parameter_count

    counts: dict[tuple, set[int]] = {}
    for r in result["runs"]:
        cfg = result["configs"][r["data"]]
        head, depth = cfg.get("head", "gap"), cfg.get("depth_mult", 2)
        key = (r["variant"], cfg["width"], cfg["kernel1"], cfg["n_classes"], head, depth)
        if key not in counts:   # the input's channels and size are not recorded: any of them
            counts[key] = {parameter_count(AllConvNet(r["variant"], in_channels=c,
                                                      n_classes=cfg["n_classes"],
                                                      width=cfg["width"], kernel1=cfg["kernel1"],
                                                      head=head, depth_mult=depth,
                                                      image_size=size))
                           for c in _CHANNELS for size in _SIZES}
        if r["parameters"] not in counts[key]:
            raise ValueError(f"{path}: the run {r['data']} {r['variant']} seed {r['seed']} has "
                             f"{r['parameters']} parameters, but a {r['variant']} network of "
                             f"this configuration has {sorted(counts[key])}: mislabelled runs")


def _values(state: dict[str, Any], data: str, variant: str, key: str) -> np.ndarray:
    from verify.table_exp import errors

    if key == "gap":
        return errors(state["result"], data, variant) - errors(state["result"], data, variant,
                                                               "train_error")
    return errors(state["result"], data, variant, key)


def _provenance(state: dict[str, Any], data: str) -> dict[str, Any]:
    r = state["result"]
    if data not in r["configs"]:
        raise ValueError(f"{state['source']}: no runs on {data!r}")
    cfg = r["configs"][data]
    return {"data": state["source"], "dataset": data, "seeds": r["seeds"],
            "steps": cfg["steps"], "n_train": cfg["n_train"], "n_test": cfg["n_test"],
            "width": cfg["width"], "regenerate": state["regenerate"],
            "table": {v: {k: s[k] for k in ("test_error_mean", "test_error_std",
                                             "train_error_mean", "gap_mean", "parameters",
                                             "seconds_mean")}
                      for v, s in state["summary"][data].items()}}


# ----------------------------------------------------------------------------- claims
def _half_claim(data: str) -> Claim:
    def run(ctx: Context, control: str | None) -> Outcome:
        st = _state(ctx)
        prov = _provenance(st, data)
        base = _values(st, data, "relu", "test_error")
        if control == "positive":   # within the baseline's std by construction
            half = base + 0.5 * base.std(ddof=1)
        else:
            key = "untrained_test_error" if control == "null" else "test_error"
            half = _values(st, data, "crelu_half", key)
        p = st["summary"][data]
        status, measured = matches_status(half, base, p["crelu_half"]["parameters"],
                                          p["relu"]["parameters"])
        if control:
            return Outcome(status, measured)
        measured.update(prov)
        return Outcome(status, measured, [st["figure"]])

    return Claim(
        id=f"table-{data}-crelu-half-matches-baseline",
        kind="replication",
        statement=(f"On {data}, CReLU with half the filters has fewer parameters than the ReLU "
                   "baseline and reaches its test error within the baseline's standard "
                   "deviation over seeds (paper Table 1: CReLU-half matches or beats the "
                   "baseline)."),
        source="Shang et al. 2016, Sec. 4.1 / Table 1; docs/theory/invariance.md",
        docs="theory/invariance.md#the-classification-table-paper-table-1-at-small-scale",
        threshold=("pass iff params(half) < params(base) and mean(half) <= mean(base) + "
                   "std(base); fail iff params(half) >= params(base) or the 95 % Welch interval "
                   "of mean(half) - mean(base) - std(base) lies above 0; else inconclusive"),
        tolerance_rationale=("'within its standard deviation' is the paper's own criterion; the "
                             "Welch interval (3 seeds each) separates a clear miss (fail) from "
                             "seed noise (inconclusive)"),
        check=lambda ctx: run(ctx, None),
        planted_positive=lambda ctx: run(ctx, "positive"),
        planted_positive_description=("the baseline's own per-seed test errors plus half their "
                                      "standard deviation, with CReLU-half's parameter count, "
                                      "in place of CReLU-half's: must pass"),
        planted_null=lambda ctx: run(ctx, "null"),
        planted_null_description=("the untrained CReLU-half models (same seeds, evaluated "
                                  "on the same test set) in place of the trained ones: must "
                                  "not pass"),
    )


def _sign_claim(data: str, key: str, cid: str, statement: str, what: str) -> Claim:
    def check(ctx: Context) -> Outcome:
        st = _state(ctx)
        status, measured = sign_status(_values(st, data, "crelu", key),
                                       _values(st, data, "relu", key), what)
        measured.update(_provenance(st, data))
        return Outcome(status, measured, [st["figure"]])

    def planted(ctx: Context, sign: float) -> Outcome:
        st = _state(ctx)
        v = _values(st, data, "relu", key)
        shift = PLANTED_SHIFT * float(v.std(ddof=1))
        status, measured = sign_status(v + sign * shift, v, what)
        measured["planted_shift"] = sign * shift
        return Outcome(status, measured)

    return Claim(
        id=f"table-{data}-{cid}", kind="replication", statement=statement,
        source="Shang et al. 2016, Sec. 4.1 / Table 1; docs/theory/invariance.md",
        docs="theory/invariance.md#the-classification-table-paper-table-1-at-small-scale",
        threshold=(f"pass iff the 95 % Welch interval of {what}(CReLU) - {what}(ReLU) over seeds "
                   "lies below 0; fail iff it lies above 0; inconclusive otherwise"),
        tolerance_rationale=("Welch t interval (unequal variances, 3 seeds per variant): the "
                             "seeds of different architectures are not paired; no margin, the "
                             "claim is the sign"),
        check=check,
        planted_positive=lambda ctx: planted(ctx, -1.0),
        planted_positive_description=(f"the ReLU runs' {what} minus {PLANTED_SHIFT:g} times "
                                      "their standard deviation over seeds in the CReLU slot, "
                                      "against the ReLU runs: must pass"),
        planted_null=lambda ctx: planted(ctx, +1.0),
        planted_null_description=(f"the reversed effect: the ReLU runs' {what} plus "
                                  f"{PLANTED_SHIFT:g} standard deviations in the CReLU slot: "
                                  "must not pass"),
    )


CLAIMS: list[Claim] = []
for _data in DATASETS:
    CLAIMS += [
        _half_claim(_data),
        _sign_claim(_data, "gap", "crelu-gap-below-relu",
                    f"On {_data}, the CReLU network's train-test gap (test error - train error) "
                    "is smaller than the ReLU baseline's (the paper argues CReLU overfits "
                    "less, Sec. 4.1).", "gap"),
        _sign_claim(_data, "test_error", "crelu-beats-relu",
                    f"On {_data}, the CReLU network (same filter counts) has a lower test error "
                    "than the ReLU baseline (paper Table 1).", "test_error"),
    ]
