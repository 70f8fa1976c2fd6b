"""Claim: the CReLU identities (docs/theory/identities.md, "Proposition") hold exactly."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from theory import crelu, relu, split_crelu
from verify.claims.base import Claim, Context, Outcome, status_from


def relu_padded(z, axis: int = 1):
    """ReLU in place of CReLU: the positive half, and zeros where the negative half would be."""
    pos = relu(z)
    zeros = torch.zeros_like(pos) if isinstance(z, torch.Tensor) else np.zeros_like(pos)
    return torch.cat([pos, zeros], dim=axis) if isinstance(z, torch.Tensor) else np.concatenate([pos, zeros], axis)


def check_identities(act: Callable, ctx: Context) -> Outcome:
    """[z]+ - [-z]+ = z and [z]+ + [-z]+ = |z| bitwise; norm to gamma_n; CReLU(Wx) = ReLU([W;-W]x)."""
    rng = ctx.rng("identities")
    n = 20 if ctx.profile == "quick" else 200
    worst = {"difference": 0.0, "avr": 0.0, "norm_rel": 0.0, "paired_bank": 0.0,
             "paired_bank_over_bound": 0.0}
    norm_ok = bank_ok = True
    for i in range(n):
        shape = tuple(rng.integers(1, 9, size=4))
        z = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)
        zs = [z, torch.from_numpy(z)]
        for arr in zs:
            pos, neg = split_crelu(act(arr))
            pos, neg = np.asarray(pos), np.asarray(neg)
            zz = np.asarray(arr)
            worst["difference"] = max(worst["difference"], float(np.abs(pos - neg - zz).max()))
            worst["avr"] = max(worst["avr"], float(np.abs(pos + neg - np.abs(zz)).max()))
            a, b = float(np.sum(pos ** 2 + neg ** 2)), float(np.sum(zz ** 2))
            u = np.finfo(np.float64).eps / 2
            gamma = 2 * z.size * u / (1 - 2 * z.size * u)
            norm_ok &= abs(a - b) <= gamma * b
            worst["norm_rel"] = max(worst["norm_rel"], abs(a - b) / b if b else 0.0)
        w = torch.from_numpy(rng.standard_normal((shape[1], shape[1], 3, 3)))
        x = torch.from_numpy(rng.standard_normal((1, shape[1], 6, 6)))
        lhs = act(torch.nn.functional.conv2d(x, w))
        rhs = relu(torch.nn.functional.conv2d(x, torch.cat([w, -w])))
        diff, bound = (lhs - rhs).abs(), paired_bank_bound(x, w)
        bank_ok &= bool((diff <= bound).all())
        worst["paired_bank"] = max(worst["paired_bank"], float(diff.max()))
        ratio = torch.where(bound > 0, diff / torch.where(bound > 0, bound, 1.0),
                            torch.where(diff > 0, torch.inf, 0.0))
        worst["paired_bank_over_bound"] = max(worst["paired_bank_over_bound"],
                                              float(ratio.max()))
    ok = worst["difference"] == 0 and worst["avr"] == 0 and norm_ok and bank_ok
    return Outcome(status_from(ok), {"arrays_tested": 2 * n, **{f"max_error_{k}": v for k, v in worst.items()},
                                     "norm_within_gamma_n": bool(norm_ok),
                                     "paired_bank_within_bound": bool(bank_ok)})


def paired_bank_bound(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Entrywise bound on |CReLU(conv(x, W)) - ReLU(conv(x, [W; -W]))| in float64, `(N, 2K, H', W')`.

    Both sides hold each dot product of n = C k_h k_w terms, evaluated by two conv calls
    that need not sum in the same order (torch picks its kernel by the channel counts), and
    ReLU is 1-Lipschitz: each entry is off by at most twice the bound of one evaluation,
    gamma_n (|W| * |x|) (Higham, *Accuracy and Stability of Numerical Algorithms*, eq. 3.5;
    FMA included), with |W| * |x| itself computed by a conv of non-negative terms (at most
    gamma_n relative above or below its exact value).
    """
    n = int(w.shape[1] * w.shape[2] * w.shape[3])
    u = np.finfo(np.float64).eps / 2
    gamma = n * u / (1 - n * u)
    mag = torch.nn.functional.conv2d(x.abs(), w.abs())
    return (2 * gamma * (1 + gamma)) * torch.cat([mag, mag], dim=1)


CLAIMS = [
    Claim(
        id="crelu-identities",
        kind="theorem",
        statement=("For every real array z: [z]+ - [-z]+ = z and [z]+ + [-z]+ = |z| exactly, "
                   "||CReLU(z)||_2 = ||z||_2, and CReLU(conv(x, W)) = ReLU(conv(x, [W; -W]))."),
        source="Shang et al. 2016, Sec. 2.2; docs/theory/identities.md, 'Proposition (identities)'",
        docs="theory/identities.md#proposition-identities",
        threshold=("differences exactly 0 (bitwise) for the two identities; the paired bank "
                   "within 2 gamma_n (|W| * |x|) entrywise (n = C k_h k_w); squared norms equal "
                   "within gamma_n = n u/(1 - n u) relative"),
        tolerance_rationale=("each entry of CReLU(z) is a copy of an entry of z or 0, so the first "
                             "identities are exact in IEEE arithmetic; the conv with [W; -W] is "
                             "another conv call, which may sum each dot product in another order "
                             "(torch chooses its kernel by the channel counts; differences of "
                             "5.3e-15 seen), so two evaluations of one dot product differ by at "
                             "most 2 gamma_n (|W| * |x|); the sums of squares hold the same terms "
                             "in a different order (summation bound gamma_n)"),
        check=lambda ctx: check_identities(crelu, ctx),
        negative_control=lambda ctx: check_identities(relu_padded, ctx),
        negative_control_description="ReLU in place of CReLU (negative half replaced by zeros)",
    ),
]
