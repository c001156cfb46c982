"""An example torchkiln plugin: a model, a dataset, a metric, a config folder and a hook plugin.

Nothing is imported here: torchkiln finds each component through this distribution's entry
points and imports its module only when a config builds it.
"""

from __future__ import annotations

__version__ = "0.1.0"
