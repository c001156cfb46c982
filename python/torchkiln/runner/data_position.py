"""Where the training data stands: saved in checkpoints, restored on resume without replaying.

A checkpoint's ``dataloader`` entry holds:

- ``sampler``: the state of whatever decides the order of the data (the batch sampler when it
  can skip by itself, else the sampler), from its ``state_dict()``;
- ``batches``: batches of the current pass already trained on;
- ``samples_per_batch``: how many sampler positions one batch takes (the batch size, or 1
  when the batch sampler itself skips);
- ``generator``: the DataLoader's private ``torch.Generator`` state as it was when the
  current pass began (it seeds the pass's workers), so the resumed pass draws the same.

On resume the sampler gets its state back and is told to ``skip`` the consumed samples: its
next pass starts right after them, at a cost that does not depend on how many there were
(:class:`~torchkiln.data.DefaultSampler` and :class:`~torchkiln.data.InfiniteSampler` skip
by arithmetic). A sampler without ``skip`` cannot do that; the loop then draws the consumed
batches and drops them (exact for deterministic samplers, but it costs a pass over them),
with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["capture_data_position", "position_target", "restore_data_position"]


def position_target(dataloader: Any) -> tuple[Any, int]:
    """``(object, samples_per_batch)``: what to save and skip to position ``dataloader``.

    A batch sampler with its own ``skip`` is positioned in batches; otherwise the sampler
    under the batch sampler (or the loader's sampler) is positioned in samples.
    """
    batch_sampler = getattr(dataloader, "batch_sampler", None)
    if batch_sampler is not None and callable(getattr(batch_sampler, "skip", None)):
        return batch_sampler, 1
    sampler = getattr(batch_sampler, "sampler", None)
    if sampler is None:
        sampler = getattr(dataloader, "sampler", None)
    per_batch = (
        getattr(batch_sampler, "batch_size", None) or getattr(dataloader, "batch_size", None) or 1
    )
    return sampler, int(per_batch)


def capture_data_position(loop: Any, batches: int) -> dict[str, Any]:
    """The ``dataloader`` entry of a checkpoint for ``loop`` with ``batches`` consumed this pass."""
    dataloader = getattr(loop, "dataloader", None)
    target, per_batch = position_target(dataloader)
    state: dict[str, Any] = {"batches": int(batches), "samples_per_batch": per_batch}
    state_dict = getattr(target, "state_dict", None)
    if callable(state_dict):
        state["sampler"] = state_dict()
        world_size = (
            state["sampler"].get("world_size") if isinstance(state["sampler"], dict) else None
        )
        if world_size is not None:
            state["world_size"] = int(world_size)
    generator: Any = getattr(dataloader, "generator", None)
    get_state = getattr(generator, "get_state", None)
    if callable(get_state):
        saved = loop.pass_generator_state() if hasattr(loop, "pass_generator_state") else None
        state["generator"] = (saved if saved is not None else get_state()).clone()
    return state


def restore_data_position(loop: Any, state: dict[str, Any] | None, batches: int) -> tuple[int, int]:
    """Position ``loop.dataloader`` after ``batches`` consumed batches of the current pass.

    :param state: the checkpoint's ``dataloader`` entry (None for an older checkpoint: the
        sampler then keeps its own state and only skips).
    :param batches: batches of the current pass already trained on.
    :returns: ``(skip, replay)``: batches consumed, and how many of them the loop must
        draw and drop itself because the sampler cannot skip.
    """
    dataloader = getattr(loop, "dataloader", None)
    target, per_batch = position_target(dataloader)
    state = state or {}
    saved_sampler = state.get("sampler")
    if saved_sampler is not None and callable(getattr(target, "load_state_dict", None)):
        target.load_state_dict(saved_sampler)
    generator: Any = getattr(dataloader, "generator", None)
    if state.get("generator") is not None and callable(getattr(generator, "set_state", None)):
        generator.set_state(state["generator"])
    if not callable(getattr(target, "skip", None)):
        if batches:
            warnings.warn(
                f"{type(target).__name__} cannot skip to a position, so resuming draws and drops the "
                f"{batches} batches already trained on in this epoch (use DefaultSampler or "
                "InfiniteSampler for an instant, exact resume)",
                stacklevel=2,
            )
        return batches, batches
    samples = batches * int(state.get("samples_per_batch", per_batch))
    saved_world = int(state.get("world_size", 0) or 0)
    world = int(getattr(target, "world_size", 0) or 0)
    if saved_world and world and saved_world != world:
        # The sampler converts its own saved position; the skip is per rank too.
        samples = samples * saved_world // world
    try:
        target.skip(samples)
    except ValueError:
        # The last batch of an epoch may be partial: everything of this pass was consumed.
        target.skip(len(target))
    return batches, 0
