"""Deep-learning environment facts: ``TORCH_VERSION``, the installed torch version string.

Importing this module imports torch.
"""

from __future__ import annotations

import torch

__all__ = ["TORCH_VERSION"]

#: ``torch.__version__`` (``'parrots'`` under SenseTime's parrots, never here).
TORCH_VERSION: str = str(torch.__version__)
