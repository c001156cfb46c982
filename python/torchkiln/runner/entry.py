"""What ``torchkiln train|val|test`` do once the config is loaded and validated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["test", "train", "val"]


class _LimitedLoader:
    """The first ``limit`` batches of a dataloader (for ``--dry-run``)."""

    def __init__(self, dataloader: Any, limit: int = 1) -> None:
        self._dataloader = dataloader
        self._limit = limit

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self._dataloader):
            if index >= self._limit:
                break
            yield batch

    def __len__(self) -> int:
        return min(self._limit, len(self._dataloader))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataloader, name)


def _build_runner(cfg: Any, run_config: Any = None) -> Any:
    from torchkiln.runner.runner import Runner

    runner_cls = Runner
    runner_type = cfg.get("runner_type")
    if runner_type:
        from torchkiln.registry import RUNNERS

        runner_cls = RUNNERS.get(runner_type)
    if getattr(runner_cls.from_cfg, "__func__", None) is Runner.from_cfg.__func__:  # type: ignore[attr-defined]  # a classmethod read from its class has __func__
        return runner_cls.from_cfg(cfg, run_config)
    return runner_cls.from_cfg(cfg)  # a runner written for MMEngine: its own from_cfg(cfg)


def train(cfg: Any, args: Any, run_config: Any = None) -> int:
    """Train from a loaded config (command-line flags folded in by
    :func:`~torchkiln.config.run_flags.apply_run_flags`, and validated into ``run_config``);
    ``--dry-run`` runs one train and one val iteration.
    """
    dry_run = bool(getattr(args, "dry_run", False))
    runner = _build_runner(cfg, run_config)
    if dry_run:
        _limit_for_dry_run(runner)
    runner.train()
    if dry_run:
        runner.logger.info("dry run finished: one train and one val iteration ran")
    return 0


def _limit_for_dry_run(runner: Any) -> None:
    loop = runner.train_loop
    loop.dataloader = _LimitedLoader(loop.dataloader, 1)
    loop.limit_to_one_iteration()
    if runner.val_loop is not None:
        runner.val_loop.dataloader = _LimitedLoader(runner.val_loop.dataloader, 1)


def _evaluate(cfg: Any, run_config: Any, mode: str) -> int:
    runner = _build_runner(cfg, run_config)
    metrics = runner.val() if mode == "val" else runner.test()
    if isinstance(metrics, Mapping):
        runner.logger.info(
            f"{mode} metrics: "
            + "  ".join(
                f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in metrics.items()
            )
        )
    return 0


def val(cfg: Any, args: Any, run_config: Any = None) -> int:
    """Validate a checkpoint on the config's val set (flags folded in as for :func:`train`)."""
    return _evaluate(cfg, run_config, "val")


def test(cfg: Any, args: Any, run_config: Any = None) -> int:
    """Test a checkpoint on the config's test set (flags folded in as for :func:`train`)."""
    return _evaluate(cfg, run_config, "test")
