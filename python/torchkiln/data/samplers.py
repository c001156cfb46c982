"""Samplers that shard a dataset by rank and can resume mid-stream without replaying.

Position API (shared by both samplers, used by checkpoint/resume):

- ``state_dict()`` records what defines the sequence (``seed``, ``epoch``, ``shuffle``, the
  world size and dataset size) plus ``start``, a position already requested by ``skip``.
- ``load_state_dict(state)`` restores it (``start`` included, so a state taken right after
  ``skip`` round-trips).
- ``skip(num_samples)`` makes the *next* ``__iter__`` begin at sample ``num_samples`` of this
  rank's sequence (of the current epoch for :class:`DefaultSampler`; of the endless stream
  for :class:`InfiniteSampler`). It costs O(1) beyond building one permutation: consumed
  samples are never generated one by one. The request is used up by that one ``__iter__``;
  the pass after it starts from the beginning again.

The sampler cannot count consumed samples itself, because DataLoader workers prefetch ahead
of the training loop. The loop knows: on resume the runner calls
``sampler.load_state_dict(saved)`` then ``sampler.skip(batches_done * batch_size)`` before it
creates the DataLoader iterator (``batches_done`` counted in this epoch for DefaultSampler, since
the start for InfiniteSampler). Positions are per rank; a changed world size is converted
through the global position (exact when it divides evenly).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import Sampler

from torchkiln.dist import get_dist_info, sync_random_seed
from torchkiln.registry import DATA_SAMPLERS

__all__ = ["DefaultSampler", "InfiniteSampler"]


def _permutation(size: int, seed: int, shuffle: bool) -> list[int]:
    """``0..size-1``, shuffled by a generator seeded with ``seed`` when ``shuffle``."""
    if not shuffle:
        return list(range(size))
    gen = torch.Generator()
    gen.manual_seed(seed)
    return torch.randperm(size, generator=gen).tolist()


class _ResumablePosition:
    """The ``skip``/``state_dict`` bookkeeping both samplers share."""

    rank: int
    world_size: int
    seed: int
    shuffle: bool
    _start: int
    _dataset_size: int

    def _max_start(self) -> int | None:
        return None

    def skip(self, num_samples: int) -> None:
        """Make the next pass start at this rank's sample ``num_samples`` (replaces an earlier request).

        :param num_samples: samples of this rank's sequence already consumed.
        """
        num_samples = int(num_samples)
        limit = self._max_start()
        if num_samples < 0 or (limit is not None and num_samples > limit):
            bound = f"0..{limit}" if limit is not None else ">= 0"
            raise ValueError(
                f"{type(self).__name__}.skip({num_samples}): position must be in {bound}"
            )
        self._start = num_samples

    @property
    def start(self) -> int:
        """Where the next pass begins (0 unless :meth:`skip` or a loaded state asked otherwise)."""
        return self._start

    def _base_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "shuffle": self.shuffle,
            "world_size": self.world_size,
            "dataset_size": self._dataset_size,
            "start": self._start,
        }

    def _load_base_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        if "shuffle" in state and bool(state["shuffle"]) != self.shuffle:
            warnings.warn(
                f"{type(self).__name__}: the saved state has shuffle={state['shuffle']}, this sampler "
                f"shuffle={self.shuffle}; keeping shuffle={self.shuffle}",
                stacklevel=3,
            )
        start = int(state.get("start", 0))
        saved_world = int(state.get("world_size", self.world_size))
        if start and saved_world != self.world_size:
            consumed = start * saved_world
            if consumed % self.world_size:
                warnings.warn(
                    f"{type(self).__name__}: resuming {start} samples per rank of {saved_world} ranks on "
                    f"{self.world_size} ranks; the position is rounded down to a whole step",
                    stacklevel=3,
                )
            start = consumed // self.world_size
        saved_size = int(state.get("dataset_size", self._dataset_size))
        if saved_size != self._dataset_size:
            warnings.warn(
                f"{type(self).__name__}: the dataset had {saved_size} samples when the state was saved, "
                f"now {self._dataset_size}; the resumed order differs from the interrupted run",
                stacklevel=3,
            )
        limit = self._max_start()
        self._start = min(start, limit) if limit is not None else start


@DATA_SAMPLERS.register_module()
class DefaultSampler(_ResumablePosition, Sampler[int]):
    """Each rank's share of the dataset, reshuffled every epoch; resumable mid-epoch.

    Epoch ``e`` uses the permutation of a ``torch.Generator`` seeded with ``seed + e`` (the
    same on every rank); rank ``r`` of ``W`` takes positions ``r, r + W, r + 2W, ...`` of it.
    With ``round_up`` the permutation is extended by repeating it from its start until every
    rank has ``ceil(len(dataset) / W)`` samples (metrics drop the repeats again, see
    :func:`torchkiln.dist.collect_results`); without it, ranks may differ by one sample.

    ``len(sampler)`` is always the full epoch share; after :meth:`skip` the next pass yields
    the remaining ``len(sampler) - start`` samples. See the module docstring for resuming.

    :param dataset: any sized dataset.
    :param shuffle: shuffle each epoch (else the natural order).
    :param seed: shared seed; if None, rank 0 draws one and broadcasts it
        (:func:`torchkiln.dist.sync_random_seed`).
    :param round_up: pad so all ranks get the same number of samples.
    """

    def __init__(
        self, dataset: Sized, shuffle: bool = True, seed: int | None = None, round_up: bool = True
    ) -> None:
        rank, world_size = get_dist_info()
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.shuffle = bool(shuffle)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.round_up = bool(round_up)
        self.epoch = 0
        self._start = 0
        self._dataset_size = len(dataset)
        if self.round_up:
            self.num_samples = math.ceil(self._dataset_size / world_size)
            self.total_size = self.num_samples * world_size
        else:
            self.num_samples = max(0, math.ceil((self._dataset_size - rank) / world_size))
            self.total_size = self._dataset_size

    def _max_start(self) -> int | None:
        return self.num_samples

    def indices(self, epoch: int | None = None) -> list[int]:
        """This rank's whole index sequence for ``epoch`` (the current one by default)."""
        epoch = self.epoch if epoch is None else epoch
        order = _permutation(self._dataset_size, self.seed + epoch, self.shuffle)
        if self.round_up and self.total_size > len(order) and order:
            repeats = math.ceil(self.total_size / len(order))
            order = (order * repeats)[: self.total_size]
        return order[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        start, self._start = self._start, 0
        return iter(self.indices()[start:])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s permutation from now on.

        Moving to another epoch drops a pending :meth:`skip` (it belonged to the old epoch);
        setting the current epoch again keeps it, so resuming with ``load_state_dict`` then
        ``set_epoch(saved_epoch)`` is safe.
        """
        epoch = int(epoch)
        if epoch != self.epoch:
            self._start = 0
        self.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """``{'epoch', 'seed', 'shuffle', 'round_up', 'world_size', 'dataset_size', 'start'}``."""
        state = self._base_state()
        state["epoch"] = self.epoch
        state["round_up"] = self.round_up
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore epoch, seed and pending start position from :meth:`state_dict`'s output."""
        self.epoch = int(state.get("epoch", 0))
        self._load_base_state(state)

    def __repr__(self) -> str:
        return (
            f"DefaultSampler(size={self._dataset_size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"round_up={self.round_up}, rank={self.rank}/{self.world_size}, epoch={self.epoch})"
        )


@DATA_SAMPLERS.register_module()
class InfiniteSampler(_ResumablePosition, Sampler[int]):
    """An endless stream of dataset indices for iteration-based training; resumable anywhere.

    The global stream is permutation 0, then 1, 2, ... of the dataset, permutation ``k``
    drawn from a ``torch.Generator`` seeded with ``seed + k``; rank ``r`` of ``W`` takes
    stream positions ``r, r + W, r + 2W, ...``. :meth:`skip` jumps straight to a position by
    arithmetic, so resuming after a million samples costs one permutation.

    :param dataset: any sized, non-empty dataset.
    :param shuffle: shuffle each pass over the data (else the natural order, repeated).
    :param seed: shared seed; if None, rank 0 draws one and broadcasts it.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None) -> None:
        rank, world_size = get_dist_info()
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.shuffle = bool(shuffle)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self._dataset_size = len(dataset)
        if self._dataset_size == 0:
            raise ValueError("InfiniteSampler needs a non-empty dataset")
        self.size = self._dataset_size
        self._start = 0

    def __iter__(self) -> Iterator[int]:
        start, self._start = self._start, 0
        return self._stream(self.rank + start * self.world_size)

    def _stream(self, position: int) -> Iterator[int]:
        while True:
            chunk_id, offset = divmod(position, self.size)
            chunk = _permutation(self.size, self.seed + chunk_id, self.shuffle)[
                offset :: self.world_size
            ]
            yield from chunk
            position += len(chunk) * self.world_size

    def __len__(self) -> int:
        """The dataset size (the stream itself never ends)."""
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """No effect: the stream already changes permutation each pass over the data."""

    def state_dict(self) -> dict[str, Any]:
        """``{'seed', 'shuffle', 'world_size', 'dataset_size', 'start'}``."""
        return self._base_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the seed and the pending start position from :meth:`state_dict`'s output."""
        self._load_base_state(state)

    def __repr__(self) -> str:
        return (
            f"InfiniteSampler(size={self.size}, shuffle={self.shuffle}, seed={self.seed}, "
            f"rank={self.rank}/{self.world_size})"
        )
