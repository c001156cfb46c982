"""MMEngine's ``mmengine.runner.log_processor`` import path for ``LogProcessor``.

The class is defined in :mod:`torchkiln.logging.log_processor`.
"""

from __future__ import annotations

from torchkiln.logging.log_processor import LogProcessor

__all__ = ["LogProcessor"]
