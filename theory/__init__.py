"""crelu-theory: the mathematics of CReLU conv layers.

Pure functions and small classes (numpy, scipy, torch); no file I/O, no printing, no
training. See the docs for the theorems each routine implements.
"""

from theory.activations import AVR, CReLU, avr, crelu, crelu_preactivation, relu, split_crelu
from theory.conv import ConvLayer
from theory.fft import CirculantPlan
from theory import rademacher
from theory import invariance
from theory.frames import FrameBounds, frame_bounds
from theory.pairing import (
    Pairing,
    PairingBaseline,
    pairing,
    random_pairing_baseline,
    sign_flip_baseline,
)
from theory.inversion import (
    InversionResult,
    NonInjectiveError,
    NonInjectiveWarning,
    invert_crelu,
    recovery_tolerance,
)
from theory.pooling import (
    MaxPoolSelection,
    PoolInversionResult,
    crelu_maxpool,
    invert_crelu_maxpool,
    selection,
)
from theory.deep import Stage, deep_forward, invert_deep

__version__ = "0.1.0"

__all__ = [
    "AVR", "CReLU", "CirculantPlan", "ConvLayer", "FrameBounds", "InversionResult",
    "NonInjectiveError", "NonInjectiveWarning", "avr", "crelu", "crelu_preactivation",
    "frame_bounds", "invert_crelu", "recovery_tolerance", "relu", "split_crelu",
    "rademacher",
    "invariance",
    "Pairing", "PairingBaseline", "pairing", "random_pairing_baseline", "sign_flip_baseline",
    "MaxPoolSelection", "PoolInversionResult", "crelu_maxpool", "invert_crelu_maxpool",
    "selection", "Stage", "deep_forward", "invert_deep",
]
