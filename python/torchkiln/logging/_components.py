"""Components this subpackage registers, named without importing them (torch-free)."""

from __future__ import annotations

COMPONENTS = {
    "LOG_PROCESSORS": {"LogProcessor": "torchkiln.logging.log_processor:LogProcessor"},
}
