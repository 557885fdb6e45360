"""Sparse-convolution backbones and heads (spconv 2.x; patched for CPU in ``spconv_compat``)."""
from . import spconv_compat

SPCONV_AVAILABLE = spconv_compat.apply()
