"""Components of torchkiln.runner, by registry (read by the registry without importing torch)."""

from __future__ import annotations

COMPONENTS: dict[str, dict[str, str]] = {
    "LOOPS": {
        "EpochBasedTrainLoop": "torchkiln.runner.train_loops:EpochBasedTrainLoop",
        "IterBasedTrainLoop": "torchkiln.runner.train_loops:IterBasedTrainLoop",
        "ValLoop": "torchkiln.runner.eval_loops:ValLoop",
        "TestLoop": "torchkiln.runner.eval_loops:TestLoop",
    },
    "RUNNERS": {
        "Runner": "torchkiln.runner.runner:Runner",
    },
}
