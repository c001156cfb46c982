"""The loop base class: what every train, val and test loop shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner.runner import Runner

__all__ = ["BaseLoop"]


class BaseLoop:
    """A loop drives one phase (train, val or test) over a dataloader.

    :param runner: the runner that owns the loop; hooks are called through it.
    :param dataloader: a built ``DataLoader`` or a dataloader config dict (built by the
        runner with its seed and rank).
    """

    def __init__(self, runner: Runner, dataloader: Any) -> None:
        self._runner = runner
        if isinstance(dataloader, dict):
            # MMEngine's loops pass the run's seed; a dataloader built without one is unseeded.
            self.dataloader = runner.build_dataloader(
                dataloader,
                seed=getattr(runner, "seed", None),
                diff_rank_seed=getattr(runner, "diff_rank_seed", False),
            )
        else:
            self.dataloader = dataloader

    @property
    def runner(self) -> Runner:
        """The runner this loop belongs to."""
        return self._runner

    def run(self) -> Any:
        """Run the loop; subclasses define what it returns."""
        raise NotImplementedError

    def restore_position(self, position: dict[str, Any], skip: int, replay: int) -> None:
        """Resume at a checkpoint's ``epoch`` and ``iter`` (MMEngine's ``_epoch``/``_iter``
        fields, for train loops written for MMEngine). The built-in loops also restore the
        batch position (``skip``/``replay``) and a pending validation.
        """
        self._epoch = int(position.get("epoch", 0))
        self._iter = int(position.get("iter", 0))
