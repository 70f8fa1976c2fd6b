r"""The convs that read the image, and reconstructions of photos through them.

Proposition 2.1 and the max-pooling theorem invert a chain that starts at the image:
conv, then ReLU or CReLU, then optional max-pooling, then the next conv. `image_chain`
finds that chain in a model by comparing traced tensors (whatever ops compute them);
`reconstruct_prefix` passes photos through the first convs of the chain (bias-free, with the
network's pooling) and reconstructs them with `theory.invert_deep` (CReLU and ReLU, with
switches) and `verify.deep.optimisation_inversion` (no switches).
"""

from __future__ import annotations

import warnings

import numpy as np

from verify.readers import ConvSpec, ModelSpec

#: An exact float64 reconstruction (mean squared error below eps^2) reads as this many dB.
PSNR_CAP_DB = float(10.0 * np.log10(1.0 / np.finfo(np.float64).eps ** 2))


ACTIVATIONS = ("relu", "crelu")


def _match(z: np.ndarray, u: np.ndarray) -> tuple[str, int] | None:
    """`(activation, pool)` with `u = maxpool_pool(activation(z))`, or None."""
    import torch
    import torch.nn.functional as F

    zt = torch.from_numpy(z)
    scale = max(float(np.abs(u).max()), float(np.abs(z).max()), 1e-30)
    pools = [1]
    if u.shape[2] and z.shape[2] // u.shape[2] >= 2 and z.shape[2] // u.shape[2] == \
            z.shape[3] // max(u.shape[3], 1):
        pools.append(z.shape[2] // u.shape[2])
    for act in ACTIVATIONS:
        a = torch.relu(zt) if act == "relu" else torch.cat([torch.relu(zt), torch.relu(-zt)], 1)
        for p in pools:
            g = F.max_pool2d(a, p, stride=p) if p > 1 else a
            if tuple(g.shape) == u.shape and np.allclose(g.numpy(), u, rtol=1e-4,
                                                         atol=1e-5 * scale):
                return act, p
    return None


def image_chain(spec: ModelSpec, trace: dict | None, images: np.ndarray | None,
                ) -> tuple[list[tuple[ConvSpec, str | None, int]], str]:
    """The first convs that read the image through conv -> activation -> max-pool stages.

    Returns `[(conv, activation after it or None, pool after it)]` and a sentence saying
    how far the chain goes and why it stops.
    """
    if images is None or not spec.convs:
        return [], "no images"
    first = spec.convs[0]
    if trace is None:
        if first.shape_source.startswith("given"):
            return [(first, None, 1)], ("weights only: the first conv reads the image; no graph "
                                        "to follow further")
        return [], "weights only, and the first conv's input is not the image"
    if first.name not in trace:
        return [], f"the first conv {first.name} was not reached by the trace"
    u0 = trace[first.name][0]
    if u0.shape != images.shape or not np.allclose(u0, images, rtol=1e-5, atol=1e-6):
        return [], (f"the first conv {first.name} does not read the image directly (the model "
                    "transforms it first)")
    chain: list = [(first, None, 1)]
    why = "the network ends"
    for nxt in spec.convs[1:]:
        prev = chain[-1][0]
        if nxt.name not in trace or prev.name not in trace:
            why = f"{nxt.name} was not reached by the trace"
            break
        found = _match(trace[prev.name][1], trace[nxt.name][0])
        if found is None:
            why = (f"the input of {nxt.name} is not ReLU or CReLU (then optional max-pooling) "
                   f"of the output of {prev.name}")
            break
        chain[-1] = (prev, *found)
        chain.append((nxt, None, 1))
    else:
        why = "all the convs the theory covers are in it"
    return chain, why


def _stacks(chain, depth: int):
    """CReLU and ReLU stacks (or None where undefined) of the first `depth` convs."""
    from theory import ConvLayer, Stage

    convs = [c for c, _, _ in chain[:depth]]
    acts = [a for _, a, _ in chain[:depth - 1]]
    pools = [p for _, _, p in chain[:depth]]
    crelu_ok = all(a == "crelu" for a in acts)
    crelu, relu = [], []
    for j, conv in enumerate(convs):
        layer = conv.layer()
        crelu.append(Stage(layer, pools[j]))
        w = conv.weight
        if j and acts[j - 1] == "crelu":   # the ReLU stack keeps the positive-half channels
            w = np.ascontiguousarray(w[:, : convs[j - 1].weight.shape[0]])
        relu.append(Stage(ConvLayer(w, stride=conv.stride, padding=conv.padding,
                                    padding_mode=conv.padding_mode, dilation=conv.dilation),
                          pools[j]))
    return (crelu if crelu_ok else None), relu


def reconstruct_prefix(chain, depth: int, images: np.ndarray, baseline_steps: int,
                       tol: float = 1e-10, maxiter: int = 3000, seed: int = 0) -> dict:
    """PSNR (dB) of each reconstruction of `images` from the features after `depth` convs."""
    from theory import deep_forward, invert_deep
    from verify.deep import optimisation_inversion, psnr

    crelu, relu = _stacks(chain, depth)
    out = {"crelu": None, "relu": None, "optimisation": None, "recon": [], "notes": []}
    per = {"crelu": [], "relu": [], "optimisation": []}
    for x in images:
        recon = {}
        for act, stages in (("crelu", crelu), ("relu", relu)):
            if stages is None:
                continue
            fwd = deep_forward(x, stages, act)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = invert_deep(fwd.last, fwd.switches, stages, x.shape, act, atol=tol,
                                  btol=tol, maxiter=maxiter)
            for w in caught:
                msg = f"{act}: {w.category.__name__}: {str(w.message)[:160]}"
                if msg not in out["notes"]:
                    out["notes"].append(msg)
            recon[act] = res.x
        base_act, base = ("crelu", crelu) if crelu is not None else ("relu", relu)
        if baseline_steps > 0:
            fwd = deep_forward(x, base, base_act)
            recon["optimisation"] = optimisation_inversion(fwd.last, base, x.shape, base_act,
                                                           steps=baseline_steps, seed=seed)
        for k, xr in recon.items():
            per[k].append(min(psnr(xr, x), PSNR_CAP_DB))
        out["recon"].append(recon)
    for k, v in per.items():
        if v:
            out[k] = float(np.mean(v))
    if crelu is None:
        out["notes"].append(f"no CReLU reconstruction through {depth} convs: the network's "
                            "activations are ReLU, so its later convs read K channels, not the "
                            "2K that CReLU gives")
    if baseline_steps > 0:
        out["notes"].append(f"optimisation baseline: {baseline_steps} Adam steps with a TV prior "
                            f"on the {'ReLU' if base_act == 'relu' else 'CReLU'} "
                            "features, no switches")
    return out


__all__ = ["ACTIVATIONS", "PSNR_CAP_DB", "image_chain", "reconstruct_prefix"]
