"""CheckpointHook: the policy of periodic, last and best checkpoints.

The hook decides *when* to save (``interval``, ``by_epoch``, ``save_begin``, ``save_last``)
and *which* checkpoint is best (``save_best`` keys and their rules); the runner's
:class:`~torchkiln.runner.checkpointer.Checkpointer` does the rest: writing (atomically,
optionally in the background), the ``last_checkpoint`` pointer, pruning (``max_keep_ckpts``),
the best records and the stop checkpoint. See docs/checkpoints.md.

Files: ``<out_dir>/epoch_{n}.pth`` (or ``iter_{n}.pth``, or ``filename_tmpl``) and best
checkpoints ``<out_dir>/best_{metric}_{epoch|iter}_{n}.pth`` (``/`` in the metric name
becomes ``_``). Best checkpoints keep optimizer and scheduler state (``save_optimizer`` and
``save_param_scheduler`` apply to them too), so a run can resume from them.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigAssertionError, ConfigError, ConfigKeyError, did_you_mean
from torchkiln.hooks._backend_args import check_local_backend
from torchkiln.hooks._rules import (
    DEFAULT_GREATER_KEYS,
    DEFAULT_LESS_KEYS,
    check_rule,
    improves,
    infer_rule,
    normalise_keys,
)
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["CheckpointHook"]

_WHERE = "default_hooks.checkpoint"


def _to_float(value: Any) -> float:
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Save checkpoints periodically, at the end, and whenever a metric reaches its best.

    :param interval: save every ``interval`` epochs (``by_epoch``) or iterations; ``-1``:
        never periodically.
    :param by_epoch: count ``interval`` and ``save_begin`` in epochs (else iterations).
    :param save_optimizer: keep the optimizer state in the checkpoints (needed to resume).
    :param save_param_scheduler: keep the schedulers' state in the checkpoints.
    :param out_dir: root folder; checkpoints go to ``out_dir/<last folder of work_dir>``.
        Default: ``runner.work_dir``.
    :param max_keep_ckpts: keep at most this many periodic checkpoints (``-1``: all). Best
        checkpoints and the one ``last_checkpoint`` points to are never deleted.
    :param save_last: also save after the last epoch/iteration, whatever the interval.
    :param save_best: a metric key, a list of keys, or ``'auto'`` (the first metric).
    :param rule: ``'greater'`` or ``'less'`` (or one per key); inferred from the key name
        when omitted.
    :param greater_keys: name parts meaning larger is better (replaces the defaults).
    :param less_keys: name parts meaning smaller is better (replaces the defaults).
    :param filename_tmpl: periodic file name with one ``{}`` for the epoch/iteration;
        default ``epoch_{}.pth`` or ``iter_{}.pth``.
    :param save_begin: no periodic checkpoint before this epoch/iteration.
    :param published_keys: after training, also write a copy of the best (else the last)
        checkpoint with only these keys, named ``<name>-<sha256[:8]>.pth``.
    :param file_client_args: accepted for MMEngine configs; only local files are supported.
    :param backend_args: accepted for MMEngine configs; only local files are supported.
    :param async_save: write checkpoints in a background thread (state staged on the CPU
        first); training stalls only for the staging.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        out_dir: str | os.PathLike[str] | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | Sequence[str] | None = None,
        rule: str | Sequence[str] | None = None,
        greater_keys: str | Sequence[str] | None = None,
        less_keys: str | Sequence[str] | None = None,
        filename_tmpl: str | None = None,
        save_begin: int = 0,
        published_keys: str | Sequence[str] | None = None,
        file_client_args: Mapping[str, Any] | None = None,
        backend_args: Mapping[str, Any] | None = None,
        async_save: bool = False,
    ) -> None:
        for name, value in (
            ("interval", interval),
            ("max_keep_ckpts", max_keep_ckpts),
            ("save_begin", save_begin),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(
                    f"CheckpointHook {name} must be an int, got {value!r}", where=f"{_WHERE}.{name}"
                )
        if save_begin < 0:
            raise ConfigError(
                f"CheckpointHook save_begin must be >= 0, got {save_begin}",
                where=f"{_WHERE}.save_begin",
            )
        check_local_backend("CheckpointHook", _WHERE, file_client_args, backend_args)
        self.file_client_args = None if file_client_args is None else dict(file_client_args)
        self.backend_args = None if backend_args is None else dict(backend_args)
        self.interval = interval
        self.by_epoch = bool(by_epoch)
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self._out_dir_arg = None if out_dir is None else os.fspath(out_dir)
        self.out_dir: str | None = self._out_dir_arg
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.save_begin = save_begin
        if not isinstance(async_save, bool):
            raise ConfigError(
                f"CheckpointHook async_save must be true or false, got {async_save!r}",
                where=f"{_WHERE}.async_save",
            )
        self.async_save = async_save

        if filename_tmpl is None:
            filename_tmpl = "epoch_{}.pth" if self.by_epoch else "iter_{}.pth"
        try:
            distinct = filename_tmpl.format(1) != filename_tmpl.format(2)
        except (IndexError, KeyError, ValueError):
            distinct = False
        if not distinct:
            raise ConfigError(
                f"filename_tmpl must contain one '{{}}' for the epoch or iteration, got {filename_tmpl!r}",
                where=f"{_WHERE}.filename_tmpl",
                hint="e.g. filename_tmpl: 'epoch_{}.pth'",
            )
        self.filename_tmpl = filename_tmpl

        self.greater_keys = normalise_keys(
            greater_keys, DEFAULT_GREATER_KEYS, f"{_WHERE}.greater_keys"
        )
        self.less_keys = normalise_keys(less_keys, DEFAULT_LESS_KEYS, f"{_WHERE}.less_keys")
        self.key_indicators = self._parse_save_best(save_best)
        self.rules = self._parse_rules(rule)

        if isinstance(published_keys, str):
            published_keys = [published_keys]
        if published_keys is not None and (
            not isinstance(published_keys, Sequence)
            or not all(isinstance(k, str) for k in published_keys)
        ):
            raise ConfigError(
                f"published_keys must be a list of checkpoint keys, got {published_keys!r}",
                where=f"{_WHERE}.published_keys",
                hint="e.g. published_keys: [meta, state_dict]",
            )
        self.published_keys = None if published_keys is None else list(published_keys)

        self._training = False
        self._configured = False
        #: The last periodic checkpoint this hook saved (None before the first).
        self.last_ckpt: str | None = None
        #: Steps of the periodic checkpoints kept (``max_keep_ckpts > 0``), oldest first;
        #: published as the ``keep_ckpt_ids`` runtime info (MMEngine's key).
        self.keep_ckpt_ids: deque[int] = deque(
            maxlen=max_keep_ckpts if max_keep_ckpts > 0 else None
        )

    # ------------------------------------------------------------------ config parsing
    @staticmethod
    def _parse_save_best(save_best: Any) -> list[str]:
        if save_best is None:
            return []
        keys = [save_best] if isinstance(save_best, str) else save_best
        if (
            not isinstance(keys, Sequence)
            or not keys
            or not all(isinstance(k, str) and k for k in keys)
        ):
            raise ConfigAssertionError(
                "\"save_best\" should be a metric key, a list of keys or 'auto',"
                f" got {save_best!r}",
                where=f"{_WHERE}.save_best",
            )
        keys = list(keys)
        if "auto" in keys and len(keys) > 1:
            raise ConfigAssertionError(
                "Only support one 'auto' in save_best, not combined with other keys",
                where=f"{_WHERE}.save_best",
            )
        if len(set(keys)) != len(keys):
            raise ConfigError(f"save_best lists a key twice: {keys}", where=f"{_WHERE}.save_best")
        return keys

    def _parse_rules(self, rule: Any) -> list[str | None]:
        n = len(self.key_indicators)
        if rule is None or isinstance(rule, str):
            rules = [rule] * n
        elif not isinstance(rule, Sequence) or not all(isinstance(r, str) for r in rule):
            raise ConfigAssertionError(
                f'"rule" should be a str or a list of str, got {rule!r}', where=f"{_WHERE}.rule"
            )
        elif len(rule) == 1:
            rules = list(rule) * n
        elif len(rule) == n:
            rules = list(rule)
        else:
            raise ConfigAssertionError(
                f'Number of "rule" must be 1 or one per save_best key ({n}), got {rule!r}',
                where=f"{_WHERE}.rule",
            )
        out: list[str | None] = []
        for key, item in zip(self.key_indicators, rules):
            item = check_rule(item, f"{_WHERE}.rule", ConfigKeyError)
            if item is None and key != "auto":
                item = infer_rule(
                    key, self.greater_keys, self.less_keys, where=f"{_WHERE}.save_best"
                )
            out.append(item)
        return out

    # ------------------------------------------------------------------ hooks
    def before_run(self, runner: Any) -> None:
        """Tell the runner's Checkpointer where checkpoints go and how many to keep."""
        self._configure(runner)

    def _configure(self, runner: Any) -> None:
        runner.checkpointer.configure(
            out_dir=self._out_dir_arg,
            max_keep_ckpts=self.max_keep_ckpts,
            async_save=self.async_save,
            # An iteration-based schedule names stop checkpoints like its periodic ones.
            stop_filename_tmpl=None if self.by_epoch else self.filename_tmpl,
        )
        if self._out_dir_arg is None:
            self.out_dir = runner.checkpointer.out_dir
        else:  # as given (relative stays relative), like the Checkpointer's rule
            base = os.path.basename(os.fspath(runner.work_dir).rstrip(os.sep))
            self.out_dir = os.path.join(self._out_dir_arg, base)
        self._configured = True

    def before_train(self, runner: Any) -> None:
        """Prepare the output folder; adopt the metric that ``save_best='auto'`` resolved to.

        Also sets what MMEngine's hook offers after this point: ``file_client`` and
        ``file_backend`` (local storage fronts), ``best_ckpt_path`` (one ``save_best`` key)
        or ``best_ckpt_path_dict`` (several), and ``keep_ckpt_ids``, each taken from the
        message hub after a resume.
        """
        from torchkiln.fileio import FileClient, get_file_backend

        self._training = True
        if not self._configured:  # driven without before_run
            self._configure(runner)
        if self.file_client_args is not None:
            self.file_client = FileClient(**self.file_client_args)
            self.file_backend: Any = self.file_client
        else:
            self.file_client = FileClient("disk")
            self.file_backend = get_file_backend(backend_args=self.backend_args or None)
        checkpointer = runner.checkpointer
        if self.key_indicators == ["auto"] and len(checkpointer.record.best) == 1:
            key, record = next(iter(checkpointer.record.best.items()))
            self.key_indicators = [key]
            self.rules = [record.rule or infer_rule(key, self.greater_keys, self.less_keys)]
        hub = runner.message_hub
        if len(self.key_indicators) == 1:
            self.best_ckpt_path: str | None = hub.get_info("best_ckpt")
        elif self.key_indicators:
            self.best_ckpt_path_dict: dict[str, str | None] = {
                key: hub.get_info(f"best_ckpt_{key}") for key in self.key_indicators
            }
        if self.max_keep_ckpts > 0:
            kept = hub.get_info("keep_ckpt_ids") or []
            self.keep_ckpt_ids = deque(kept, maxlen=self.max_keep_ckpts)
        checkpointer.prepare_out_dir()

    def after_train(self, runner: Any) -> None:
        """Wait for background writes; write the published copy if asked for."""
        self._training = False
        runner.checkpointer.wait()
        if self.published_keys is not None and runner.checkpointer.is_writer:
            runner.checkpointer.publish(self.published_keys)

    def after_train_epoch(self, runner: Any) -> None:
        """Save every ``interval`` epochs from ``save_begin`` on, and after the last epoch."""
        if not self.by_epoch:
            return
        if self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner)
        ):
            self._save_periodic(runner, runner.epoch + 1)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Save every ``interval`` iterations from ``save_begin`` on, and after the last one."""
        if self.by_epoch:
            return
        if self.every_n_train_iters(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_iter(runner)
        ):
            self._save_periodic(runner, runner.iter + 1)

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Save a best checkpoint for each ``save_best`` key whose score improved (during
        training only; a validation on its own saves nothing)."""
        if not self.key_indicators:
            return
        if not metrics:
            runner.logger.warning(
                "save_best is set but validation returned no metrics (an empty dict); "
                "no best checkpoint saved for this evaluation"
            )
            return
        if self._training:
            self._save_best(runner, metrics)

    # ------------------------------------------------------------------ saving
    def _options(self, by_epoch: bool) -> dict[str, Any]:
        return {
            "save_optimizer": self.save_optimizer,
            "save_param_scheduler": self.save_param_scheduler,
            "by_epoch": by_epoch,
        }

    def _save_periodic(self, runner: Any, step: int, **options: Any) -> None:
        """Save the periodic checkpoint of ``step``; the runtime info it carries says which
        periodic checkpoints are kept (``keep_ckpt_ids``) and which is the latest (``last_ckpt``).
        """
        filename = self.filename_tmpl.format(step)
        hub = runner.message_hub
        ids = self.keep_ckpt_ids
        if self.max_keep_ckpts > 0 and (not ids or ids[-1] != step):
            ids.append(step)
            hub.update_info("keep_ckpt_ids", list(ids))
        self.last_ckpt = os.path.join(runner.checkpointer.out_dir, filename)
        hub.update_info("last_ckpt", self.last_ckpt)
        runner.checkpointer.save_periodic(filename, **self._options(self.by_epoch), **options)

    def _resolve_auto(self, metrics: Mapping[str, Any]) -> None:
        key = next(iter(metrics))
        self.key_indicators = [key]
        if self.rules[0] is None:
            self.rules = [
                infer_rule(key, self.greater_keys, self.less_keys, where=f"{_WHERE}.save_best")
            ]

    def _save_best(self, runner: Any, metrics: Mapping[str, Any]) -> None:
        if self.key_indicators == ["auto"]:
            self._resolve_auto(metrics)
        checkpointer = runner.checkpointer
        unit, count = ("epoch", runner.epoch) if self.by_epoch else ("iter", runner.iter)
        improved = False
        for i, key in enumerate(self.key_indicators):
            if key not in metrics:
                hint = (
                    did_you_mean(key, list(metrics))
                    or f"available metrics: {', '.join(map(str, metrics))}"
                )
                raise ConfigError(
                    f"save_best key {key!r} is not among the validation metrics",
                    where=f"{_WHERE}.save_best",
                    hint=hint,
                )
            score = _to_float(metrics[key])
            rule = self.rules[i]
            assert rule is not None
            best = checkpointer.best(key)
            if not math.isfinite(score) or not improves(
                score, None if best is None else best.score, rule
            ):
                continue
            improved = True
            filename = f"best_{key.replace('/', '_')}_{unit}_{count}.pth"
            # The loops know where training stands (validation runs after the counters
            # moved on); this validation has produced its metrics, so a run resumed from a
            # best checkpoint does not repeat it.
            path = os.path.join(checkpointer.out_dir, filename)
            # MMEngine's runtime-info keys, named after this hook's keys (the Checkpointer's
            # record may hold more after save_best changed between resumed runs).
            suffix = "" if len(self.key_indicators) == 1 else f"_{key}"
            runner.message_hub.update_info(f"best_score{suffix}", score)
            runner.message_hub.update_info(f"best_ckpt{suffix}", path)
            if suffix:
                self.best_ckpt_path_dict[key] = path
            else:
                self.best_ckpt_path = path
            checkpointer.save_best(
                key, score, rule, filename, meta={"val_pending": False}, **self._options(False)
            )
            runner.logger.info(
                f"The best checkpoint with {score:.4f} {key} at {count} {unit} is saved to {filename}."
            )
        # The periodic checkpoint of this step was saved before this validation; save it
        # again (whatever the interval) so it records the new best and this validation.
        if improved and self.last_ckpt is not None:
            self._save_periodic(runner, count, meta={"val_pending": False})
