"""Components this subpackage registers, named without importing them (torch-free)."""

from __future__ import annotations

COMPONENTS = {
    "VISBACKENDS": {
        "LocalVisBackend": "torchkiln.visualization.local_backend:LocalVisBackend",
        "TensorboardVisBackend": "torchkiln.visualization.tensorboard_backend:TensorboardVisBackend",
    },
}
