"""A small all-convolutional family in the spirit of the paper's CIFAR experiments.

Five variants (Shang et al. 2016, Sec. 4.1; docs/theory/invariance.md, "The classification
table"), scaled to a 2-core CPU:

==============  ===========================  ====================================
name            filters per conv layer        activation (channels it outputs)
==============  ===========================  ====================================
``relu``        ``w, 2w, 2w``                ReLU (same as filters)
``relu_double`` ``2w, 4w, 4w``               ReLU
``crelu``       ``w, 2w, 2w``                CReLU (twice the filters)
``crelu_half``  ``w/2, w, w``                CReLU (so the same widths as ``relu``)
``avr``         ``w, 2w, 2w``                absolute value
==============  ===========================  ====================================

Layout: ``conv1 (k1 x k1) - act - maxpool 2 - conv2 (3x3) - act - maxpool 2 - conv3 (3x3) -
act - head``. All convs are zero-padded to keep the size. Two heads:

* ``gap`` (the default, the paper's all-convolutional ending): a 1x1 conv to the classes,
  then the global average over positions;
* ``dense``: one linear map of the whole last feature map (``C x H/4 x W/4`` values) to the
  classes, i.e. a conv whose kernel covers the map. It keeps where a feature is; with it the
  ReLU baseline reaches 91-92 % on Fashion-MNIST in 15 epochs, against 89 % with ``gap``
  (docs/howto/train.md). The conv layers, which the pairing, invariance and inversion
  analyses use, are the same under both heads.

``depth_mult`` (default 2) sets the filters of conv2 and conv3 as a multiple of ``w``.
``crelu_half`` has fewer parameters than ``relu``; ``crelu`` more (its later layers, and the
head, see twice the channels).
"""

from __future__ import annotations

import torch
from torch import nn

from theory.activations import AVR, CReLU
from verify.configs import HEADS as HEADS
from verify.configs import MODEL_NAMES as MODEL_NAMES

_FILTER_SCALE = {"relu": 1.0, "relu_double": 2.0, "crelu": 1.0, "crelu_half": 0.5, "avr": 1.0}


def _activation(name: str) -> tuple[nn.Module, int]:
    if name.startswith("crelu"):
        return CReLU(dim=1), 2
    if name == "avr":
        return AVR(), 1
    return nn.ReLU(), 1


class AllConvNet(nn.Module):
    """Three conv layers with the chosen activation, then a 1x1 conv classifier.

    Parameters
    ----------
    name : one of :data:`MODEL_NAMES`
    in_channels : image channels (1 grey, 3 colour)
    n_classes : output classes
    width : ``w``, the first-layer filter count of the ``relu`` baseline
    kernel1 : first-layer kernel size (odd)
    init_scale1 : factor on conv1's default (Kaiming-uniform) initial weights; below 1 the
        learned structure of the first layer dominates its initial noise sooner
    head : ``"gap"`` or ``"dense"`` (see the module notes)
    depth_mult : filters of conv2 and conv3 as a multiple of ``width``
    image_size : input side; fixes the shape of the dense head (unused by ``gap``)

    Examples
    --------
    >>> import torch
    >>> net = AllConvNet("crelu", width=4, head="dense")
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, name: str, in_channels: int = 1, n_classes: int = 10, width: int = 32,
                 kernel1: int = 5, init_scale1: float = 1.0, head: str = "gap",
                 depth_mult: int = 2, image_size: int = 28) -> None:
        super().__init__()
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
        if width < 2 or kernel1 < 1 or kernel1 % 2 == 0:
            raise ValueError(f"width must be >= 2 and kernel1 odd and positive; got {width}, {kernel1}")
        if in_channels < 1 or n_classes < 2:
            raise ValueError(f"need in_channels >= 1 and n_classes >= 2; got {in_channels}, {n_classes}")
        if not init_scale1 > 0:
            raise ValueError(f"init_scale1 must be > 0, got {init_scale1}")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        if depth_mult < 1:
            raise ValueError(f"depth_mult must be >= 1, got {depth_mult}")
        self.config = {"name": name, "in_channels": in_channels, "n_classes": n_classes,
                       "width": width, "kernel1": kernel1}
        if init_scale1 != 1.0:
            self.config["init_scale1"] = float(init_scale1)
        if head != "gap":
            if image_size < 4:
                raise ValueError(f"the dense head needs image_size >= 4, got {image_size}")
            self.config["head"] = head
            self.config["image_size"] = int(image_size)
        if depth_mult != 2:
            self.config["depth_mult"] = int(depth_mult)
        self.head = head
        scale = _FILTER_SCALE[name]
        filters = [max(1, int(round(scale * w))) for w in (width, depth_mult * width, depth_mult * width)]
        kernels = [kernel1, 3, 3]
        layers: list[nn.Module] = []
        channels = in_channels
        for i, (k, f) in enumerate(zip(kernels, filters)):
            conv = nn.Conv2d(channels, f, k, padding=k // 2)
            act, mult = _activation(name)
            layers += [conv, act] + ([nn.MaxPool2d(2)] if i < 2 else [])
            channels = f * mult
        # "gap": 1x1 conv to the classes, then the global average; "dense": a linear map of the
        # whole last feature map (image_size fixes its shape)
        side = image_size // 4      # two 2x2 max-pools (floor)
        self.classifier = nn.Conv2d(channels, n_classes, 1) if head == "gap" else \
            nn.Linear(channels * side * side, n_classes)
        self.body = nn.Sequential(*layers)
        if init_scale1 != 1.0:
            with torch.no_grad():
                self.convs[0].weight.mul_(init_scale1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"{self.config['name']} expects (N, {self.config['in_channels']}, H, W) "
                             f"images, got shape {tuple(x.shape)}")
        h = self.body(x)
        if self.head == "gap":
            return self.classifier(h).mean(dim=(2, 3))
        return self.classifier(h.flatten(1))

    @property
    def convs(self) -> list[nn.Conv2d]:
        """conv1..conv3 (the classifier excluded)."""
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def conv_weights(self) -> list[torch.Tensor]:
        """The weights of conv1..conv3 (K, C, kh, kw), detached (the pairing analysis input)."""
        return [c.weight.detach() for c in self.convs]


def build_model(name: str, **kwargs) -> AllConvNet:
    """``AllConvNet(name, **kwargs)``."""
    return AllConvNet(name, **kwargs)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
