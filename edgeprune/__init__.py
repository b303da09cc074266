"""edgeprune: hardware-aware filter pruning and deployment of CNNs for edge devices.

Importing this package is light: onnx, onnxruntime, paramiko, tensorrt and matplotlib
are imported only inside the functions that need them.
"""

from edgeprune.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
