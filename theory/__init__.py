"""crelu-theory: the mathematics of CReLU conv layers.

Pure functions and small classes (numpy, scipy, torch); no file I/O, no printing, no
training. See the docs for the theorems each routine implements.
"""

from theory.activations import AVR, CReLU, avr, crelu, crelu_preactivation, relu, split_crelu
from theory.conv import ConvLayer
from theory.fft import CirculantPlan
from theory import rademacher
from theory.frames import FrameBounds, frame_bounds
from theory.pairing import (
    Pairing,
    PairingBaseline,
    matched_pairing_baseline,
    pairing,
    random_pairing_baseline,
)
from theory.inversion import (
    InversionResult,
    NonInjectiveError,
    NonInjectiveWarning,
    invert_crelu,
    recovery_tolerance,
)

__version__ = "0.1.0"

__all__ = [
    "AVR", "CReLU", "CirculantPlan", "ConvLayer", "FrameBounds", "InversionResult",
    "NonInjectiveError", "NonInjectiveWarning", "avr", "crelu", "crelu_preactivation",
    "frame_bounds", "invert_crelu", "recovery_tolerance", "relu", "split_crelu",
    "rademacher",
    "Pairing", "PairingBaseline", "matched_pairing_baseline", "pairing",
    "random_pairing_baseline",
]
