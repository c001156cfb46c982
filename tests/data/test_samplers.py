"""DefaultSampler and InfiniteSampler: sharding, padding, determinism and resume position."""

from __future__ import annotations

import itertools

import pytest
import torch

from torchkiln.data import DefaultSampler, InfiniteSampler


def _perm(n: int, seed: int) -> list[int]:
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.randperm(n, generator=g).tolist()


def _on_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr("torchkiln.data.samplers.get_dist_info", lambda: (rank, world))


def _shards(monkeypatch, n: int, world: int, **kwargs) -> list[DefaultSampler]:
    out = []
    for rank in range(world):
        _on_rank(monkeypatch, rank, world)
        out.append(DefaultSampler(range(n), **kwargs))
    return out


def test_single_process_is_seeded_permutation_per_epoch():
    s = DefaultSampler(range(10), shuffle=True, seed=7)
    assert len(s) == 10
    assert list(s) == _perm(10, 7)
    s.set_epoch(3)
    assert list(s) == _perm(10, 10)
    assert list(DefaultSampler(range(5), shuffle=False, seed=0)) == [0, 1, 2, 3, 4]


def test_same_seed_same_order_different_epochs_differ():
    a, b = DefaultSampler(range(50), seed=1), DefaultSampler(range(50), seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert sorted(a) == list(range(50))


def test_sharding_with_round_up_pads_by_repeating(monkeypatch):
    shards = _shards(monkeypatch, 10, 3, shuffle=True, seed=4)
    perm = _perm(10, 4)
    padded = perm + perm[:2]
    assert [len(s) for s in shards] == [4, 4, 4]
    for rank, s in enumerate(shards):
        assert s.total_size == 12
        assert list(s) == padded[rank::3]
    union = [i for s in shards for i in s]
    assert sorted(set(union)) == list(range(10))


def test_sharding_without_round_up_has_no_repeats(monkeypatch):
    shards = _shards(monkeypatch, 10, 3, shuffle=False, round_up=False)
    assert [len(s) for s in shards] == [4, 3, 3]
    assert [list(s) for s in shards] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_dataset_smaller_than_world(monkeypatch):
    shards = _shards(monkeypatch, 2, 4, shuffle=False)
    assert [list(s) for s in shards] == [[0], [1], [0], [1]]


@pytest.mark.parametrize("start", [0, 1, 5, 9, 10])
def test_skip_resumes_exactly_the_remaining_sequence(start):
    s = DefaultSampler(range(10), seed=3)
    s.set_epoch(2)
    full = list(s)
    s.skip(start)
    assert s.start == start
    assert list(s) == full[start:]
    assert s.start == 0
    assert list(s) == full  # the request is used up by one pass


def test_resume_through_state_dict_in_a_fresh_sampler():
    original = DefaultSampler(range(23), seed=11)
    original.set_epoch(4)
    full = list(original)
    state = original.state_dict()
    assert state == {
        "seed": 11, "shuffle": True, "world_size": 1, "dataset_size": 23, "start": 0, "epoch": 4, "round_up": True,
    }
    resumed = DefaultSampler(range(23), seed=999)
    resumed.load_state_dict(state)
    resumed.skip(8)
    resumed.set_epoch(4)  # the seed hook sets the same epoch again: the position survives
    assert list(resumed) == full[8:]
    resumed.set_epoch(5)
    assert list(resumed) == _perm(23, 16)


def test_state_taken_after_skip_round_trips():
    s = DefaultSampler(range(12), seed=0)
    s.skip(5)
    t = DefaultSampler(range(12), seed=1)
    t.load_state_dict(s.state_dict())
    assert list(t) == list(DefaultSampler(range(12), seed=0))[5:]


def test_set_epoch_to_another_epoch_drops_pending_skip():
    s = DefaultSampler(range(8), seed=2)
    s.skip(3)
    s.set_epoch(1)
    assert list(s) == _perm(8, 3)


def test_skip_out_of_range():
    s = DefaultSampler(range(8), seed=2)
    with pytest.raises(ValueError, match="0..8"):
        s.skip(9)
    with pytest.raises(ValueError):
        s.skip(-1)


def test_resume_on_a_different_world_size_continues_the_global_order(monkeypatch):
    # Two ranks consumed 3 samples each = the first 6 positions of the padded permutation.
    _on_rank(monkeypatch, 0, 2)
    old = DefaultSampler(range(11), seed=9)
    old.skip(3)
    state = old.state_dict()
    padded = _perm(11, 9) + _perm(11, 9)[:1]
    remaining = []
    for rank in range(3):
        _on_rank(monkeypatch, rank, 3)
        new = DefaultSampler(range(11), seed=0)
        new.load_state_dict(state)
        assert new.start == 2
        remaining.append(list(new))
    assert remaining == [padded[6 + r :: 3] for r in range(3)]


def test_infinite_sampler_stream_is_chained_permutations():
    s = InfiniteSampler(range(6), seed=5)
    stream = list(itertools.islice(iter(s), 18))
    assert stream == _perm(6, 5) + _perm(6, 6) + _perm(6, 7)
    assert len(s) == 6
    unshuffled = list(itertools.islice(iter(InfiniteSampler(range(3), shuffle=False, seed=0)), 7))
    assert unshuffled == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("start", [0, 1, 5, 6, 13, 37])
def test_infinite_sampler_resumes_at_the_next_sample(start):
    reference = list(itertools.islice(iter(InfiniteSampler(range(6), seed=1)), 80))
    resumed = InfiniteSampler(range(6), seed=42)
    resumed.load_state_dict(InfiniteSampler(range(6), seed=1).state_dict())
    resumed.skip(start)
    assert list(itertools.islice(iter(resumed), 30)) == reference[start : start + 30]


def test_infinite_sampler_sharded_resume(monkeypatch):
    single = list(itertools.islice(iter(InfiniteSampler(range(7), seed=3)), 60))
    for rank in range(3):
        _on_rank(monkeypatch, rank, 3)
        s = InfiniteSampler(range(7), seed=3)
        s.skip(4)
        assert list(itertools.islice(iter(s), 10)) == single[rank::3][4:14]


def test_infinite_sampler_skip_cost_does_not_grow():
    s = InfiniteSampler(range(10), seed=0)
    s.skip(10**12 + 3)  # arithmetic only: returns at once
    first = next(iter(s))
    assert first == _perm(10, 10**11)[3]


def test_infinite_sampler_rejects_empty_dataset():
    with pytest.raises(ValueError, match="non-empty"):
        InfiniteSampler([], seed=0)


def test_default_seed_is_drawn_when_none():
    s = DefaultSampler(range(4))
    assert isinstance(s.seed, int) and 0 <= s.seed < 2**31
