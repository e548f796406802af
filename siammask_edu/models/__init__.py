"""SiamMask network modules. See book/01_siamese_tracking.py."""

from .backbone import AdjustLayer, Bottleneck, ResNetBackbone, load_torchvision_weights
from .heads import DepthwiseXCorrHead
from .refine import Refine
from .siammask import Exemplar, SearchOutputs, SiamMask, build_model, count_parameters

__all__ = [
    "AdjustLayer", "Bottleneck", "ResNetBackbone", "load_torchvision_weights",
    "DepthwiseXCorrHead", "Refine", "Exemplar", "SearchOutputs", "SiamMask", "build_model",
    "count_parameters",
]
