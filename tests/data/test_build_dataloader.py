"""build_dataloader: config keys, defaults, errors and worker seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from torchkiln.data import DefaultSampler, DigitsDataset, InfiniteSampler, build_dataloader, worker_init_fn
from torchkiln.registry._index import builtin_components
from torchkiln.errors import BuildError
from torchkiln.registry import ALL_REGISTRIES
from torchkiln.registry.registry import _import_target


COMPONENTS = {group.upper(): builtin_components(f"torchkiln.{group}") for group in ("data_samplers", "datasets", "functions")}


def _registry(const: str):
    return {r.name.upper(): r for r in ALL_REGISTRIES.values()}[const]


def test_component_table_resolves():
    for const, table in COMPONENTS.items():
        registry = _registry(const)
        for name, target in table.items():
            assert registry.get(name) is _import_target(target), name


def test_digits_config_builds_default_sampler_and_stacked_batches():
    loader = build_dataloader(
        {"dataset": {"type": "DigitsDataset", "split": "val"}, "batch_size": 50, "shuffle": False,
         "collate_fn": {"type": "default_collate"}},
        seed=3,
    )
    assert isinstance(loader.sampler, DefaultSampler)
    assert loader.sampler.seed == 3 and not loader.sampler.shuffle
    assert len(loader) == 8  # ceil(359 / 50)
    x, y = next(iter(loader))
    assert x.shape == (50, 64) and y.shape == (50,)
    ds = loader.dataset
    assert torch.equal(x[0], ds[0][0])


def test_default_collate_fn_is_pseudo_collate_as_in_mmengine():
    ds = DigitsDataset("val")
    loader = build_dataloader({"dataset": ds, "batch_size": 5, "shuffle": False})
    inputs, labels = next(iter(loader))
    # Transposed, not stacked: one tensor per sample, as MMEngine's default leaves them.
    assert len(inputs) == 5 and all(torch.equal(x, ds[i][0]) for i, x in enumerate(inputs))
    assert [int(y) for y in labels] == [int(ds[i][1]) for i in range(5)]


def test_function_configs_become_partials_as_in_mmengine():
    import functools

    from torchkiln.data import pseudo_collate

    loader = build_dataloader({"dataset": list(range(4)), "collate_fn": {"type": "pseudo_collate"}})
    assert isinstance(loader.collate_fn, functools.partial) and loader.collate_fn.func is pseudo_collate
    loader = build_dataloader(
        {"dataset": list(range(4)), "worker_init_fn": {"type": "torch.manual_seed"}, "num_workers": 0}
    )
    assert isinstance(loader.worker_init_fn, functools.partial)
    assert loader.worker_init_fn.func is torch.manual_seed


def test_num_batch_per_epoch_keeps_the_first_batches_and_the_metainfo():
    ds = DigitsDataset("val")
    assert ds.metainfo
    loader = build_dataloader({"dataset": ds, "batch_size": 3, "num_batch_per_epoch": 2, "shuffle": False})
    assert len(loader.dataset) == 6 and len(loader) == 2
    assert loader.dataset.metainfo == ds.metainfo
    with pytest.raises(BuildError, match="num_batch_per_epoch must be a positive int"):
        build_dataloader({"dataset": ds, "num_batch_per_epoch": 0})


def test_sampler_config_gets_dataset_and_seed():
    ds = DigitsDataset("val")
    cfg = {"dataset": ds, "sampler": {"type": "InfiniteSampler", "shuffle": False}, "batch_size": 4}
    loader = build_dataloader(cfg, seed=5)
    assert isinstance(loader.sampler, InfiniteSampler) and loader.sampler.seed == 5
    assert loader.sampler.dataset is ds
    # torch's own samplers take data_source and no seed
    loader = build_dataloader({"dataset": ds, "sampler": {"type": "torch.utils.data.SequentialSampler"}}, seed=5)
    assert isinstance(loader.sampler, SequentialSampler)


def test_diff_rank_seed_keeps_sampler_seed_shared():
    loader = build_dataloader({"dataset": list(range(10)), "batch_size": 2}, seed=7, diff_rank_seed=True)
    assert isinstance(loader.sampler, DefaultSampler)  # seed drawn via sync_random_seed, not the rank seed


def test_collate_fn_by_name_dict_or_callable():
    data = [(torch.zeros(i + 1), i) for i in range(4)]
    for spec in ("pseudo_collate", {"type": "pseudo_collate"}):
        loader = build_dataloader({"dataset": data, "collate_fn": spec, "batch_size": 4, "shuffle": False})
        inputs, labels = next(iter(loader))
        assert [t.shape[0] for t in inputs] == [1, 2, 3, 4] and list(labels) == [0, 1, 2, 3]
    loader = build_dataloader({"dataset": data[:1], "collate_fn": lambda b: "custom"})
    assert next(iter(loader)) == "custom"


def test_batch_sampler_config():
    loader = build_dataloader(
        {"dataset": list(range(10)), "sampler": {"type": "DefaultSampler", "shuffle": False},
         "batch_sampler": {"type": "BatchSampler"}, "batch_size": 4, "drop_last": True,
         "collate_fn": "default_collate"}
    )
    assert isinstance(loader.batch_sampler, BatchSampler)
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_built_batch_sampler_conflicts_with_batch_size():
    bs = BatchSampler(range(4), 2, False)
    with pytest.raises(BuildError, match="batch_size"):
        build_dataloader({"dataset": list(range(4)), "batch_sampler": bs, "batch_size": 2})


def test_dataloader_passes_through_and_worker_only_keys_dropped():
    loader = DataLoader(list(range(3)))
    assert build_dataloader(loader) is loader
    built = build_dataloader({"dataset": list(range(3)), "num_workers": 0, "persistent_workers": True,
                              "prefetch_factor": 4, "pin_memory": False, "generator": 3})
    assert built.num_workers == 0 and not built.persistent_workers
    assert isinstance(built.generator, torch.Generator) and built.generator.initial_seed() == 3


def test_unknown_key_is_a_build_error_with_suggestion():
    with pytest.raises(BuildError) as info:
        build_dataloader({"dataset": list(range(3)), "batchsize": 2}, name="train_dataloader")
    text = str(info.value)
    assert "unknown train_dataloader key 'batchsize'" in text
    assert "did you mean 'batch_size'" in text
    assert info.value.where == "train_dataloader.batchsize"


def test_missing_dataset_and_unknown_types():
    with pytest.raises(BuildError, match="needs a 'dataset'"):
        build_dataloader({"batch_size": 2})
    with pytest.raises(BuildError, match="DigitDataset"):
        build_dataloader({"dataset": {"type": "DigitDataset"}})
    with pytest.raises(BuildError, match="unexpected argument 'shufle'"):
        build_dataloader({"dataset": list(range(3)), "sampler": {"type": "DefaultSampler", "shufle": True}})
    with pytest.raises(BuildError, match="collate"):
        build_dataloader({"dataset": list(range(3)), "collate_fn": {"type": "pseudo_colate"}})


def test_worker_init_fn_seeds_from_seed_rank_and_worker():
    worker_init_fn(worker_id=1, num_workers=2, rank=1, seed=10)  # 10 + 1 * 2 + 1
    got = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(13)
    np.random.seed(13)
    torch.manual_seed(13)
    assert got == (random.random(), np.random.rand(), torch.rand(1).item())


def test_worker_init_fn_config_receives_context():
    seen = {}

    def init(worker_id, rank, seed, scale=1):
        seen.update(worker_id=worker_id, rank=rank, seed=seed, scale=scale)

    loader = build_dataloader({"dataset": list(range(2)), "worker_init_fn": init}, seed=4)
    assert loader.worker_init_fn is init
    from torchkiln.registry import FUNCTIONS

    FUNCTIONS.register_module(name="test_init_ctx", force=True, module=init)
    loader = build_dataloader({"dataset": list(range(2)), "worker_init_fn": {"type": "test_init_ctx", "scale": 3}},
                              seed=4)
    loader.worker_init_fn(0)
    assert seen == {"worker_id": 0, "rank": 0, "seed": 4, "scale": 3}


def test_seeded_loader_leaves_global_torch_rng_alone():
    loader = build_dataloader({"dataset": list(range(6)), "batch_size": 2}, seed=1)
    state = torch.get_rng_state()
    for _ in range(3):
        list(loader)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_loader_yields_exactly_the_remaining_batches(num_workers):
    cfg = {
        "dataset": {"type": "DigitsDataset", "split": "val", "augment": True, "noise_std": 0.05},
        "batch_size": 16,
        "num_workers": num_workers,
        "collate_fn": "default_collate",
    }
    full = build_dataloader(dict(cfg), seed=2)
    full.sampler.set_epoch(1)
    full.dataset.set_epoch(1)
    batches = list(full)
    assert len(batches) == 23

    consumed = 9  # batches done before the interruption
    state = full.sampler.state_dict()
    resumed = build_dataloader(dict(cfg), seed=2)
    resumed.sampler.load_state_dict(state)
    resumed.sampler.skip(consumed * 16)
    resumed.sampler.set_epoch(1)  # as DistSamplerSeedHook does on the resumed epoch
    resumed.dataset.set_epoch(1)
    rest = list(resumed)
    assert len(rest) == len(batches) - consumed
    for (x, y), (rx, ry) in zip(batches[consumed:], rest):
        assert torch.equal(x, rx) and torch.equal(y, ry)
