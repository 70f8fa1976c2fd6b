"""crelu-theory: the mathematics of CReLU conv layers.

Pure functions and small classes (numpy, scipy, torch); no file I/O, no printing, no
training. Each name below lives in a topic module (`theory.conv`, `theory.frames`, ...)
and is re-exported here; the docs (docs/theory/) give the theorem each routine implements,
and docs/dev/architecture.md the map of the modules.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from theory import invariance as invariance
from theory import rademacher as rademacher
from theory.activations import AVR as AVR
from theory.activations import CReLU as CReLU
from theory.activations import avr as avr
from theory.activations import crelu as crelu
from theory.activations import crelu_preactivation as crelu_preactivation
from theory.activations import relu as relu
from theory.activations import split_crelu as split_crelu
from theory.conv import ConvLayer as ConvLayer
from theory.deep import Stage as Stage
from theory.deep import deep_forward as deep_forward
from theory.deep import invert_deep as invert_deep
from theory.features import conv_crelu_maxpool as conv_crelu_maxpool
from theory.features import crelu_features as crelu_features
from theory.features import crelu_maxpool as crelu_maxpool
from theory.fft import CirculantPlan as CirculantPlan
from theory.certified import Certificate as Certificate
from theory.certified import certify_conv as certify_conv
from theory.frames import FrameBounds as FrameBounds
from theory.frames import frame_bounds as frame_bounds
from theory.frames import polyphase_bounds as polyphase_bounds
from theory.frames import tile_bounds as tile_bounds
from theory.inversion import NonInjectiveError as NonInjectiveError
from theory.inversion import NonInjectiveWarning as NonInjectiveWarning
from theory.inversion import invert_crelu as invert_crelu
from theory.inversion import recovery_tolerance as recovery_tolerance
from theory.operator import ConvOperator as ConvOperator
from theory.pairing import Pairing as Pairing
from theory.pairing import PairingBaseline as PairingBaseline
from theory.pairing import pairing as pairing
from theory.pairing import random_pairing_baseline as random_pairing_baseline
from theory.pairing import sign_flip_baseline as sign_flip_baseline
from theory.pooling import PoolInversionResult as PoolInversionResult
from theory.pooling import invert_crelu_maxpool as invert_crelu_maxpool
from theory.results import InversionBatch as InversionBatch
from theory.results import InversionResult as InversionResult
from theory.selection import MaxPoolSelection as MaxPoolSelection
from theory.selection import selection as selection
from theory.solvers import Solution as Solution
from theory.spanning import ActiveSpan as ActiveSpan
from theory.spanning import active_span as active_span
from theory.spanning import receptive_patches as receptive_patches

try:
    __version__ = _version("crelu-theory")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "AVR", "ActiveSpan", "CReLU", "Certificate", "CirculantPlan", "ConvLayer", "ConvOperator", "FrameBounds",
    "InversionBatch", "InversionResult", "MaxPoolSelection", "NonInjectiveError",
    "NonInjectiveWarning", "Pairing", "PairingBaseline", "PoolInversionResult", "Solution",
    "Stage", "active_span", "avr", "certify_conv", "conv_crelu_maxpool", "crelu", "crelu_features",
    "crelu_maxpool", "crelu_preactivation", "deep_forward", "frame_bounds", "invariance",
    "invert_crelu", "invert_crelu_maxpool", "invert_deep", "pairing", "polyphase_bounds", "rademacher",
    "random_pairing_baseline", "receptive_patches", "recovery_tolerance", "relu", "selection",
    "sign_flip_baseline", "split_crelu", "tile_bounds",
]
