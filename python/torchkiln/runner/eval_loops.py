"""Validation and test loops: run the model in eval mode, feed an evaluator, report metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torchkiln.errors import ConfigError
from torchkiln.registry import LOOPS
from torchkiln.runner.base_loop import BaseLoop

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner.runner import Runner

__all__ = ["TestLoop", "ValLoop"]


class _EvalLoop(BaseLoop):
    """Shared body of ValLoop and TestLoop; ``mode`` is 'val' or 'test'."""

    mode = "val"

    def __init__(self, runner: Runner, dataloader: Any, evaluator: Any, fp16: bool = False) -> None:
        super().__init__(runner, dataloader)
        if evaluator is None:
            raise ConfigError(
                f"a {self.mode}_dataloader needs a {self.mode}_evaluator",
                hint=f"add {self.mode}_evaluator: {{type: Accuracy}} (or a list of metrics), or remove {self.mode}_dataloader",
            )
        if callable(getattr(evaluator, "process", None)) and not hasattr(evaluator, "metrics"):
            evaluator = [evaluator]  # a single metric object
        self.evaluator = runner.build_evaluator(evaluator)
        dataset = getattr(self.dataloader, "dataset", None)
        if dataset is not None and hasattr(dataset, "metainfo"):
            self.evaluator.dataset_meta = dataset.metainfo
        self.fp16 = fp16
        self._loss_sum: Any = None
        self._loss_count = 0
        self._seen = 0
        self._kept: int | None = None
        #: True when the last run stopped early on a stop request (no metrics, no after hooks).
        self.interrupted = False

    def _autocast(self) -> Any:
        if not self.fp16:
            return contextlib.nullcontext()
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if device == "cuda" else torch.bfloat16
        return torch.autocast(device_type=device, dtype=dtype)

    def run(self) -> dict[str, Any] | None:
        """Evaluate the whole dataloader; return the metrics dict.

        Inside a single-process training run, a stop request (a signal) ends the evaluation
        after the current batch: it returns None, sets :attr:`interrupted`, and calls neither
        ``after_{mode}_epoch`` nor ``after_{mode}`` (there are no metrics). The train loop
        then records the validation as still pending, and a resumed run repeats it. Under
        torch.distributed an evaluation always completes (ranks could not agree on where to
        stop without a collective per batch).
        """
        import torch

        runner = self.runner
        self.interrupted = False
        can_stop = not getattr(runner, "distributed", False)
        dispatch = runner.dispatch
        mode = self.mode
        getattr(dispatch, f"before_{mode}")(runner)
        getattr(dispatch, f"before_{mode}_epoch")(runner)
        model = runner.model
        if model.training:
            model.eval()
        size = len(self.dataloader.dataset) if hasattr(self.dataloader, "dataset") else None
        self._start_loss(size)
        before_iter = getattr(dispatch, f"before_{mode}_iter")
        after_iter = getattr(dispatch, f"after_{mode}_iter")
        step = getattr(model, f"{mode}_step")
        evaluator = self.evaluator
        with torch.no_grad():
            for idx, data_batch in enumerate(self.dataloader):
                before_iter(runner, idx, data_batch)
                with self._autocast():
                    outputs = step(data_batch)
                self._collect_loss(outputs, data_batch)
                evaluator.process(data_samples=outputs, data_batch=data_batch)
                after_iter(runner, idx, data_batch, outputs)
                if can_stop and getattr(runner, "stop_requested", False):
                    self.interrupted = True
                    self._drop_partial_results()
                    return None
        metrics = evaluator.evaluate(size)
        metrics = self._add_mean_loss(metrics)
        getattr(dispatch, f"after_{mode}_epoch")(runner, metrics)
        getattr(dispatch, f"after_{mode}")(runner)
        return metrics

    def _drop_partial_results(self) -> None:
        for metric in getattr(self.evaluator, "metrics", ()):
            results = getattr(metric, "results", None)
            if isinstance(results, list):
                results.clear()

    def _start_loss(self, size: int | None) -> None:
        """Reset the loss totals; ``size`` (the dataset's length) bounds the samples counted."""
        from torchkiln.dist import kept_sample_count

        self._loss_sum = None
        self._loss_count = 0
        self._seen = 0
        self._kept = None if size is None else kept_sample_count(size)

    def _collect_loss(self, outputs: Any, data_batch: Any = None) -> None:
        """Add the batch's ``loss`` times its counted samples to the totals, on the device.

        Counted samples are those the metrics keep (:func:`torchkiln.dist.kept_sample_count`):
        the repeats a ``round_up`` sampler pads in at the end of a rank's share are left out,
        so ``val/loss`` is the mean over the dataset, as in one process. A per-sample ``loss``
        (shape ``(N,)``) drops them exactly; a batch mean is weighted by the batch's counted
        samples (exact unless one batch mixes real and padded samples).
        """
        size = _batch_size(data_batch)
        counted = size if self._kept is None else max(0, min(size, self._kept - self._seen))
        self._seen += size
        if not (isinstance(outputs, Mapping) and "loss" in outputs):
            return
        loss = outputs["loss"].detach().float()
        if loss.dim() == 1 and loss.shape[0] == size:
            total = loss[:counted].sum()
        elif counted == 0:
            total = loss.new_zeros(())  # all padding: even a NaN loss must not count
        else:
            total = loss.mean() * counted
        self._loss_sum = total if self._loss_sum is None else self._loss_sum + total
        self._loss_count += counted

    def _add_mean_loss(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """``loss``: the mean over every rank's counted samples.

        Under torch.distributed every rank joins the reduction, also one that saw no batch
        (its totals are zero), so no rank waits for another.
        """
        import torch

        from torchkiln.dist import all_reduce, get_world_size

        distributed = get_world_size() > 1
        if self._loss_sum is None and not distributed:
            return metrics
        if self._loss_sum is None:
            device = "cpu"
            if torch.distributed.get_backend() == "nccl":
                device = f"cuda:{torch.cuda.current_device()}"
            loss_sum = torch.zeros((), device=device)
            has_loss = 0.0
        else:
            loss_sum, has_loss = self._loss_sum, 1.0
        totals = torch.stack(
            [loss_sum, loss_sum.new_tensor(float(self._loss_count)), loss_sum.new_tensor(has_loss)]
        )
        totals = all_reduce(totals, op="sum")
        if float(totals[2]) == 0 or float(totals[1]) == 0:  # no loss, or nothing counted
            return metrics
        metrics = dict(metrics)
        metrics.setdefault("loss", float(totals[0] / totals[1]))
        return metrics


def _batch_size(data_batch: Any) -> int:
    """Rows in the first tensor of a (nested) batch; 1 when there is none."""
    stack = [data_batch]
    while stack:
        item = stack.pop(0)
        shape = getattr(item, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            if (
                item
                and not hasattr(item[0], "shape")
                and not isinstance(item[0], (Mapping, list, tuple))
            ):
                return len(item)
            stack.extend(item)
    return 1


@LOOPS.register_module()
class ValLoop(_EvalLoop):
    """Validation: ``model.val_step`` on every batch, then ``evaluator.evaluate``.

    :param runner: the runner.
    :param dataloader: dataloader or its config.
    :param evaluator: an Evaluator, a metric config, or a list of metric configs.
    :param fp16: run under autocast (float16 on CUDA, bfloat16 on CPU).
    """

    mode = "val"


@LOOPS.register_module()
class TestLoop(_EvalLoop):
    """Testing: like :class:`ValLoop` with ``model.test_step`` and the test hooks."""

    mode = "test"
