"""The exact sequence of mount points of a 2-epoch x 2-iteration run with validation."""

from __future__ import annotations

from kiln_toys import ToyModel, make_loader

from torchkiln import Runner
from torchkiln.evaluation import BaseMetric
from torchkiln.hooks import Hook
from torchkiln.hookspecs import MOUNT_POINTS


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples[1]))

    def compute_metrics(self, results):
        return {"seen": float(sum(results))}


def test_exact_hook_sequence(tmp_path) -> None:
    calls: list[tuple] = []

    class Rec(Hook):
        priority = "HIGHEST"

    # Methods with exactly the spec's argument names, so the host binds them by name.
    def add(name, args):
        src = f"def {name}(self, {', '.join(args)}):\n"
        extra = ", batch_idx" if "batch_idx" in args else ""
        src += f"    calls.append(('{name}'{extra},))\n"
        ns = {"calls": calls}
        exec(src, ns)
        setattr(Rec, name, ns[name])

    import inspect

    from torchkiln import hookspecs

    for name in MOUNT_POINTS:
        spec = getattr(hookspecs, name)
        add(name, list(inspect.signature(spec).parameters))

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        val_dataloader=make_loader(4, 2),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
        val_cfg=dict(),
        val_evaluator=CountMetric(),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        custom_hooks=[Rec()],
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
    )
    runner.train()

    epoch = [
        ("before_train_epoch",),
        ("before_train_iter", 0), ("after_backward",), ("before_optimizer_step",), ("after_train_iter", 0),
        ("before_train_iter", 1), ("after_backward",), ("before_optimizer_step",), ("after_train_iter", 1),
        ("after_train_epoch",),
        ("before_save_checkpoint",),
        ("before_val",), ("before_val_epoch",),
        ("before_val_iter", 0), ("after_val_iter", 0),
        ("before_val_iter", 1), ("after_val_iter", 1),
        ("after_val_epoch",), ("after_val",),
    ]
    expected = [("before_run",), ("before_train",), *epoch, *epoch, ("after_train",), ("after_run",)]
    assert calls == expected
