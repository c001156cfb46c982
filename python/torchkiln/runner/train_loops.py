"""Training loops: by epoch and by iteration (MMEngine's semantics and names).

Hot path: ``run_iter`` is called once per batch. It does exactly three things — the
``before_train_iter`` hooks, ``model.train_step`` and the ``after_train_iter`` hooks — and
every attribute it needs is looked up once per epoch, not per batch. After each iteration
the loop asks the runner whether to stop (a signal); that is an attribute read in a single
process and one small collective per iteration under torch.distributed (see
:mod:`torchkiln.runner.signals`).

Resume bookkeeping: the loops know exactly where training stands at any moment a
checkpoint may be taken (:meth:`checkpoint_position`): finished epochs and iterations, the
batches drawn in the current pass over the dataloader, and whether a validation is due but
has not completed. A resumed loop starts its first pass at the saved batch (the runner
positions the sampler, see :mod:`torchkiln.runner.data_position`) and runs a pending
validation before training on.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.errors import ConfigAssertionError
from torchkiln.registry import LOOPS
from torchkiln.runner.base_loop import BaseLoop

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner.runner import Runner

__all__ = [
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "check_train_outputs",
    "set_epoch_everywhere",
]


def _whole(value: Any) -> Any:
    """``value`` as an int when it is a whole float (``1e6``, Python configs' "never"), as
    MMEngine's loops accept; anything else unchanged (and checked by the caller)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _parse_dynamic_intervals(
    start_interval: int, dynamic_intervals: Sequence[Sequence[int]] | None, what: str
) -> tuple[list[int], list[int]]:
    milestones = [0]
    intervals = [start_interval]
    if dynamic_intervals:
        for item in dynamic_intervals:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ConfigAssertionError(
                    f"train_cfg.dynamic_intervals items must be [milestone, interval], got {item!r}",
                    where="train_cfg.dynamic_intervals",
                )
            milestones.append(int(item[0]))
            intervals.append(int(item[1]))
        if milestones != sorted(milestones):
            raise ConfigAssertionError(
                f"train_cfg.dynamic_intervals milestones must be increasing {what}",
                where="train_cfg.dynamic_intervals",
            )
    return milestones, intervals


def check_train_outputs(model: Any, outputs: Any) -> None:
    """Raise a clear error when ``train_step`` did not return a dict (checked once per run)."""
    if not isinstance(outputs, dict):
        raise TypeError(
            f"{type(model).__name__}.train_step must return a dict of loss values to log "
            f"(e.g. {{'loss': tensor}}), got {type(outputs).__name__}"
        )


# Loop phases a checkpoint can be taken in (see ``checkpoint_position``).
IDLE = "idle"
ITER_END = "iter_end"  # after_train_iter hooks run: the iteration is done, not yet counted
EPOCH_END = "epoch_end"  # after_train_epoch hooks run: the epoch is done, not yet counted
_PHASE_OF_MOUNT_POINT = {"after_train_iter": ITER_END, "after_train_epoch": EPOCH_END}


def set_epoch_everywhere(dataloader: Any, epoch: int) -> None:
    """``set_epoch(epoch)`` on the sampler, batch sampler and dataset of ``dataloader`` (each once)."""
    batch_sampler = getattr(dataloader, "batch_sampler", None)
    seen: list[int] = []
    for obj in (
        getattr(dataloader, "sampler", None),
        batch_sampler,
        getattr(batch_sampler, "sampler", None),
        getattr(dataloader, "dataset", None),
    ):
        if obj is None or id(obj) in seen or not callable(getattr(obj, "set_epoch", None)):
            continue
        seen.append(id(obj))
        obj.set_epoch(epoch)


class _TrainLoopMixin:
    """State and helpers shared by both train loops."""

    runner: Runner
    _runner: Runner
    dataloader: Any
    _epoch: int
    _iter: int

    def _init_state(
        self, val_begin: int, val_interval: int, dynamic_intervals: Any, unit: str
    ) -> None:
        self._epoch = 0
        self._iter = 0
        val_begin, val_interval = _whole(val_begin), _whole(val_interval)
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self.dynamic_milestones, self.dynamic_intervals = _parse_dynamic_intervals(
            val_interval, dynamic_intervals, unit
        )
        self._outputs_checked = False
        # Resume bookkeeping.
        self._phase = IDLE
        self._pass_pos = 0  # batches drawn from the dataloader in the current pass
        self._pass_generator_state: Any = (
            None  # the DataLoader generator's state when the pass began
        )
        self._resume_skip = 0  # batches of the next pass already consumed before a resume
        self._resume_replay = (
            0  # of those, how many must be drawn and dropped (sampler cannot skip)
        )
        self._val_pending = False  # a validation is due and has not completed
        self._poll_stop = self._stop_poller()
        self.pass_iterator: Any = None  # the current pass's iterator (its workers, if any)

    @property
    def epoch(self) -> int:
        """Number of finished epochs (the current epoch index, 0-based)."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Number of finished training iterations."""
        return self._iter

    def _interval_at(self, progress: int) -> int:
        step = bisect.bisect(self.dynamic_milestones, progress + 1)
        return self.dynamic_intervals[step - 1]

    def _decide_current_val_interval(self, progress: int) -> None:
        """Set ``val_interval`` to the one in force for unit ``progress`` (0-based), as
        MMEngine's loops show it to hooks before that unit."""
        self.val_interval = self._interval_at(progress)

    def _ensure_train_mode(self) -> None:
        model = self.runner.model
        if not model.training:
            model.train()

    # ------------------------------------------------------------------ passes over the data
    def _start_pass(self) -> Iterator[Any]:
        """A new iterator over the dataloader; the first one after a resume starts at the saved batch."""
        loader = self.dataloader
        generator = getattr(loader, "generator", None)
        get_state = getattr(generator, "get_state", None)
        self._pass_generator_state = get_state() if callable(get_state) else None
        skip, replay = self._resume_skip, self._resume_replay
        self._resume_skip = self._resume_replay = 0
        self._pass_pos = skip
        iterator = iter(loader)
        self.pass_iterator = iterator
        # Only for samplers that cannot skip: draw the consumed batches and drop them.
        for _ in range(replay):
            next(iterator)
        return iterator

    def _end_pass(self) -> None:
        self._pass_pos = 0
        self._pass_generator_state = None

    def _next_pass(self) -> Iterator[Any]:
        """Count the finished pass as an epoch and start the next one."""
        self._epoch += 1
        self._end_pass()
        set_epoch_everywhere(self.dataloader, self._epoch)
        return self._start_pass()

    # ------------------------------------------------------------------ validation
    def _validation_due_after_epoch(self, epochs_done: int) -> bool:
        return False

    def _validation_due_after_iter(self, iters_done: int) -> bool:
        return False

    def _should_validate(self) -> bool:
        return False

    def _after_unit(self, done: int) -> bool:
        """After an epoch (or an iteration, by iteration; ``done`` units finished): validate
        when due; True when a stop request ends training (the validation then stays pending
        for the checkpoint)."""
        self._decide_current_val_interval(done)  # the interval of the next unit (index done)
        self._val_pending = self._should_validate()
        if self._poll_stop():
            return True
        if self._val_pending:
            self._validate()
        return False

    def _validate(self) -> None:
        """Run validation; it stays pending if a stop request interrupted it."""
        val_loop = self.runner.val_loop
        self._val_pending = True
        val_loop.run()
        if not getattr(val_loop, "interrupted", False):
            self._val_pending = False
        self._ensure_train_mode()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_position(self) -> dict[str, Any]:
        """Where training stands for a checkpoint taken now.

        ``{'epoch', 'iter', 'epoch_iter', 'val_pending'}``: finished epochs and iterations,
        batches of the current pass over the dataloader already trained on (``epoch_iter``;
        0 at an epoch boundary), and whether a validation is due and has not completed. Inside
        ``after_train_iter`` the running iteration counts as finished, inside
        ``after_train_epoch`` the running epoch does.
        """
        epoch, iters, position = self._epoch, self._iter, self._pass_pos
        if self._phase == ITER_END:
            iters += 1
            val_pending = self._validation_due_after_iter(iters)
        elif self._phase == EPOCH_END:
            epoch += 1
            position = 0
            val_pending = self._validation_due_after_epoch(epoch)
        else:
            val_pending = self._val_pending
        return {
            "epoch": epoch,
            "iter": iters,
            "epoch_iter": position,
            "val_pending": bool(val_pending),
        }

    def pass_generator_state(self) -> Any:
        """The DataLoader generator's state to save: as it was when the current pass began."""
        if self._phase == EPOCH_END or self._pass_pos == 0:
            return None  # no pass in progress: the generator's current state is the one
        return self._pass_generator_state

    def restore_position(self, position: dict[str, Any], skip: int, replay: int) -> None:
        """Set the counters from a checkpoint's position; the next pass skips ``skip`` batches.

        :param position: ``epoch``, ``iter`` and ``val_pending`` as :meth:`checkpoint_position` gave.
        :param skip: batches of the current pass already trained on.
        :param replay: how many of them the loop must draw and drop (0 when the sampler skipped).
        """
        self._epoch = int(position.get("epoch", 0))
        self._iter = int(position.get("iter", 0))
        self._val_pending = bool(position.get("val_pending", False))
        self._resume_skip = int(skip)
        self._resume_replay = int(replay)
        self._phase = IDLE

    @contextlib.contextmanager
    def finishing(self, mount_point: str) -> Iterator[None]:
        """While ``after_train_iter``/``after_train_epoch`` hooks run outside :meth:`run_iter`
        (a custom loop calling them through ``runner.call_hook``): the running iteration or
        epoch counts as finished for checkpoints taken meanwhile. Other mount points: no effect.
        """
        phase = _PHASE_OF_MOUNT_POINT.get(mount_point)
        if phase is None or self._phase != IDLE:
            yield
            return
        self._phase = phase
        try:
            yield
        finally:
            self._phase = IDLE

    def limit_to_one_iteration(self) -> None:
        """Train one iteration and validate after it (``torchkiln train --dry-run``)."""
        self._limit_length()
        self.val_begin = 1
        self.val_interval = 1
        self.dynamic_milestones, self.dynamic_intervals = [0], [1]

    def _limit_length(self) -> None:
        raise NotImplementedError

    def _stop_poller(self) -> Any:
        """The function the loop asks after each iteration whether to stop (looked up once)."""
        control = getattr(self._runner, "stop_control", None)
        return control.poll if control is not None else self._runner.poll_stop

    def _train_one(self, idx: int, data_batch: Any) -> None:
        """One training iteration: hooks, ``train_step``, hooks; then count it."""
        runner = self._runner
        dispatch = runner.dispatch
        dispatch.before_train_iter(runner, idx, data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        if not self._outputs_checked:
            check_train_outputs(runner.model, outputs)
            self._outputs_checked = True
        self._phase = ITER_END
        try:
            dispatch.after_train_iter(runner, idx, data_batch, outputs)
        finally:
            self._phase = IDLE
        self._iter += 1


@LOOPS.register_module()
class EpochBasedTrainLoop(_TrainLoopMixin, BaseLoop):
    """Train for ``max_epochs`` passes over the dataloader, validating every ``val_interval``.

    :param runner: the runner.
    :param dataloader: dataloader or its config.
    :param max_epochs: total training epochs.
    :param val_begin: first epoch (1-based) after which validation runs.
    :param val_interval: validate every this many epochs.
    :param dynamic_intervals: ``[[epoch, interval], ...]`` changes ``val_interval`` from an epoch on.
    """

    def __init__(
        self,
        runner: Runner,
        dataloader: Any,
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
        dynamic_intervals: list[list[int]] | None = None,
    ) -> None:
        super().__init__(runner, dataloader)
        max_epochs = _whole(max_epochs)
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ConfigAssertionError(
                f"train_cfg.max_epochs must be a positive int, got {max_epochs!r}",
                where="train_cfg.max_epochs",
            )
        self._max_epochs = max_epochs
        self._max_iters = max_epochs * len(self.dataloader)
        self._init_state(val_begin, val_interval, dynamic_intervals, "epochs")

    @property
    def max_epochs(self) -> int:
        """Total number of training epochs."""
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        """Total number of training iterations (epochs x batches per epoch)."""
        return self._max_iters

    def run(self) -> Any:
        """Train until ``max_epochs``, until ``stop_training`` is set, or until a stop request."""
        runner = self.runner
        runner.dispatch.before_train(runner)
        if self._val_pending and runner.val_loop is not None:
            # Resumed from a checkpoint taken before a validation that did not complete.
            self._validate()
        while (
            self._epoch < self._max_epochs and not self.stop_training and not runner.stop_requested
        ):
            if self.run_epoch() is False:  # (a subclass's run_epoch may return None)
                break  # stopped mid-epoch
            if self._after_unit(self._epoch):
                break
        if not runner.stop_requested:
            runner.dispatch.after_train(runner)
        return runner.model

    def _validation_due_after_epoch(self, epochs_done: int) -> bool:
        if self.runner.val_loop is None or epochs_done < self.val_begin:
            return False
        return epochs_done % self._interval_at(epochs_done) == 0 or epochs_done == self._max_epochs

    def _should_validate(self) -> bool:
        return self._validation_due_after_epoch(self._epoch)

    def run_epoch(self) -> bool:
        """Iterate over the dataloader once; False when a stop request ended the epoch early."""
        runner = self.runner
        runner.dispatch.before_train_epoch(runner)
        self._ensure_train_mode()
        start = self._resume_skip
        run_iter, poll_stop = self.run_iter, self._poll_stop
        for idx, data_batch in enumerate(self._start_pass(), start):
            self._pass_pos = idx + 1
            run_iter(idx, data_batch)
            if poll_stop():
                return False  # the epoch counter stays where it is
        self._phase = EPOCH_END
        try:
            runner.dispatch.after_train_epoch(runner)
        finally:
            self._phase = IDLE
        self._epoch += 1
        self._end_pass()
        return True

    # One training iteration: hooks, ``train_step``, hooks (the body both loops share; a
    # subclass may override run_iter as in MMEngine).
    run_iter = _TrainLoopMixin._train_one

    def _limit_length(self) -> None:
        self._max_epochs = 1
        self._max_iters = 1


class _InfiniteDataloaderIterator:
    """Endless iteration over a dataloader; each new pass calls ``set_epoch`` with the pass number.

    A dataloader whose sampler ends (not an ``InfiniteSampler``) is restarted when it runs
    out, which re-creates its worker processes; the first restart of a run logs a warning.
    """

    def __init__(self, loop: IterBasedTrainLoop) -> None:
        self._loop = loop
        self._iterator = loop._start_pass()
        self._warned = False

    def __iter__(self) -> _InfiniteDataloaderIterator:
        return self

    def __next__(self) -> Any:
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._restart_warning()
            self._iterator = self._loop._next_pass()
            batch = next(self._iterator)
        self._loop._pass_pos += 1
        return batch

    def _restart_warning(self) -> None:
        if self._warned:
            return
        self._warned = True
        self._loop.runner.logger.warning(
            f"IterBasedTrainLoop: the train dataloader ran out after {self._loop._pass_pos}"
            " batches and restarts (its workers are re-created on every pass); use"
            " sampler=dict(type='InfiniteSampler') to iterate without restarts"
        )


@LOOPS.register_module()
class IterBasedTrainLoop(_TrainLoopMixin, BaseLoop):
    """Train for ``max_iters`` iterations, validating every ``val_interval`` iterations.

    :param runner: the runner.
    :param dataloader: dataloader or its config (``InfiniteSampler`` suits it best).
    :param max_iters: total training iterations.
    :param val_begin: first iteration (1-based) after which validation runs.
    :param val_interval: validate every this many iterations.
    :param dynamic_intervals: ``[[iter, interval], ...]``.
    """

    def __init__(
        self,
        runner: Runner,
        dataloader: Any,
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
        dynamic_intervals: list[list[int]] | None = None,
    ) -> None:
        super().__init__(runner, dataloader)
        max_iters = _whole(max_iters)
        if not isinstance(max_iters, int) or max_iters < 1:
            raise ConfigAssertionError(
                f"train_cfg.max_iters must be a positive int, got {max_iters!r}",
                where="train_cfg.max_iters",
            )
        self._max_iters = max_iters
        self._dataloader_iterator: _InfiniteDataloaderIterator | None = None
        self._init_state(val_begin, val_interval, dynamic_intervals, "iterations")

    @property
    def max_epochs(self) -> int:
        """Passes over the data needed for ``max_iters`` (informational)."""
        length = len(self.dataloader) if hasattr(self.dataloader, "__len__") else 0
        return -(-self._max_iters // length) if length else 1

    @property
    def max_iters(self) -> int:
        """Total number of training iterations."""
        return self._max_iters

    @property
    def dataloader_iterator(self) -> _InfiniteDataloaderIterator:
        """The endless iterator over the train dataloader, created on first use (per run).

        A custom ``run`` draws batches with ``next(self.dataloader_iterator)``.
        """
        iterator = self._dataloader_iterator
        if iterator is None:
            iterator = self._dataloader_iterator = _InfiniteDataloaderIterator(self)
        return iterator

    def run(self) -> Any:
        """Train until ``max_iters``, until ``stop_training`` is set, or until a stop request."""
        runner = self.runner
        dispatch = runner.dispatch
        dispatch.before_train(runner)
        dispatch.before_train_epoch(runner)
        self._ensure_train_mode()
        if self._val_pending and runner.val_loop is not None:
            self._validate()
        loader = self.dataloader_iterator
        while self._iter < self._max_iters and not self.stop_training and not runner.stop_requested:
            data_batch = next(loader)
            self.run_iter(data_batch)
            if self._after_unit(self._iter):
                break
        if not runner.stop_requested:
            dispatch.after_train_epoch(runner)
            dispatch.after_train(runner)
        return runner.model

    def _validation_due_after_iter(self, iters_done: int) -> bool:
        if self.runner.val_loop is None or iters_done < self.val_begin:
            return False
        return iters_done % self._interval_at(iters_done) == 0 or iters_done == self._max_iters

    def _should_validate(self) -> bool:
        return self._validation_due_after_iter(self._iter)

    def run_iter(self, data_batch: Any) -> None:
        """One training iteration: hooks, ``train_step``, hooks (``batch_idx`` is the iteration)."""
        self._train_one(self._iter, data_batch)

    def _limit_length(self) -> None:
        self._max_iters = 1
