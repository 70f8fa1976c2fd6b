r"""
# Inspect a network

`crelu inspect` ([how-to](../../howto/inspect.md)) reads a model file and reports, per conv
layer, its frame bounds (is the layer injective under CReLU?), the fraction of patches whose
active filters span the input under ReLU, the pairing of its filters against two baselines,
and reconstructions of photos through the first layers.

Here we build a small network ourselves, with a first layer whose filters come in opposite
pairs (what CReLU builds in) and a dilated second layer, save its `state_dict` to a file, and
inspect the file exactly as the command does: `verify.inspect.inspect_model` is the Python
API of `crelu inspect MODEL --input-shape 3,16,16 --geometry FILE --out DIR`.
"""

import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from verify.inspect import inspect_model

# %%
# ## The network and its file
#
# conv1: 12 filters 3x3 on RGB, six of them the negatives of the other six; ReLU; 2x2
# max-pool; conv2: 24 filters 3x3 with dilation 2 (zero padding 2 keeps the size); ReLU. A
# state_dict holds weights only, so the stride, padding and dilation go into a small
# geometry file.

torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(12, 24, 3, padding=2, dilation=2), nn.ReLU())
with torch.no_grad():
    net[0].weight[6:] = -net[0].weight[:6]

folder = Path(tempfile.mkdtemp())
torch.save(net.state_dict(), folder / "net.pt")
(folder / "geometry.json").write_text(json.dumps({"layers": {
    "0": {"padding": 1},
    "3": {"padding": 2, "dilation": 2, "input_shape": [12, 8, 8]}}}))

# %%
# ## The inspection

report = inspect_model(folder / "net.pt", "3,16,16", geometry=folder / "geometry.json",
                       images=("astronaut", "coffee"), out=folder / "report",
                       baseline_steps=100)
for layer in report["layers"]:
    fb, pr = layer["frame_bounds"], layer["pairing"]
    print(f"{layer['name']}: weight {layer['weight_shape']}, input {layer['input_shape']}")
    print(f"   frame bounds [{fb['lower']:.4g}, {fb['upper']:.4g}] ({fb['method']}, "
          f"certified: {fb['certified']}); CReLU injective: {layer['crelu_injective']}")
    frac = layer["relu_injective_fraction"]
    print("   ReLU: " + ("not tested (a weight-only file: no traced inputs)" if frac is None
                         else f"{frac:.3f} of the sample patches span"))
    print(f"   pairing: mean mu {pr['mean_mu']:.3f}, i.i.d. banks {pr['iid_baseline_mean']:.3f}, "
          f"sign-flip p = {pr['sign_flip_p']:.3g}")
    print(f"   reconstruction PSNR (dB): {layer['reconstruction_psnr_db']}")

# %%
# The first layer is injective under CReLU (\(a > 0\)), yet no patch passes the ReLU test:
# 12 filters, about half of them active, cannot span the 27 dimensions of a 3x3 RGB patch.
# And still the ReLU reconstruction through it is exact: its filters come in exact opposite
# pairs, so ReLU of the bank *is* CReLU of its first half, which is injective (the patch test
# is sufficient, not necessary). The pairs give \(\bar\mu = -1\), far below the i.i.d.
# baseline, and the sign-flip test says the signs are not random. The second layer pairs like
# a random bank; a state_dict has no graph to run, so its inputs on the photos (and with them
# its ReLU test) are unknown: inspect the `nn.Module` or an ONNX export to get them.
#
# ## The figures the report holds
#
# The filter mosaic of the first layer frames each mutual pair in one colour; then the
# \(\mu\) histograms against both baselines, and the reconstruction panel (through one and
# through two convs; through two there is no CReLU variant: the network is a ReLU network,
# its second conv reads 12 channels, not 24).

figures = sorted((folder / "report" / "figures").iterdir())
print([f.name for f in figures])
for name in ("00_0_filters.png", "00_0_mu.png", "01_3_mu.png", "reconstruction.png"):
    img = plt.imread(folder / "report" / "figures" / name)
    fig, ax = plt.subplots(figsize=(img.shape[1] / 90, img.shape[0] / 90))
    ax.imshow(img)
    ax.axis("off")
plt.show()

# %%
# `inspect.md` in the same folder holds a table of these numbers, every layer's notes (how its
# input shape is known, whether the bounds are certified) and the skipped layers:

print((folder / "report" / "inspect.md").read_text().split("## Model notes")[0])
print("skipped:", report["skipped"], "| model notes:", report["model"]["notes"])
assert np.isclose(report["layers"][0]["pairing"]["mean_mu"], -1.0)
