"""mtlens: shared representations in multi-task learning.

Benchmarks with known generative factors, multi-task models, MTL optimisation methods and measures of what
the shared representation learned. Every part works alone on plain tensors and arrays.
"""

from mtlens.errors import MtlensError

__version__ = "0.1.0"
__all__ = ["MtlensError", "__version__"]
