"""EarlyStoppingHook: stop training when a validation metric stops improving."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import (
    ConfigAssertionError,
    ConfigRuntimeError,
    ConfigTypeError,
    ConfigValueError,
    did_you_mean,
)
from torchkiln.hooks._rules import (
    DEFAULT_GREATER_KEYS,
    DEFAULT_LESS_KEYS,
    check_rule,
    improves,
    infer_rule,
)
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["EarlyStoppingHook"]

_WHERE = "custom_hooks.EarlyStoppingHook"
_STATE_KEY = "early_stopping"


@HOOKS.register_module()
class EarlyStoppingHook(Hook):
    """Set ``runner.train_loop.stop_training`` when ``monitor`` has not improved for a while.

    After each validation: a non-finite score stops at once (``check_finite``); a score that
    reaches ``stopping_threshold`` stops at once; a score that beats the best by at least
    ``min_delta`` becomes the new best; otherwise the wait count grows, and training stops
    when it reaches ``patience``. The state (best score, wait count) is kept in the message
    hub, so a resumed run continues counting.

    Validations count during training, and when the hook is driven by hand (no
    ``before_run``); a validation of a runner that is not training (``runner.val()``) does not.

    :param monitor: the metric key, e.g. ``accuracy/top1`` or ``loss``.
    :param rule: ``'greater'`` or ``'less'``; inferred from ``monitor`` when omitted.
    :param min_delta: the smallest change that counts as an improvement.
    :param strict: raise when ``monitor`` is missing from the metrics (else warn).
    :param check_finite: stop when the metric becomes NaN or infinite.
    :param patience: validations without improvement before stopping (0: the first one).
    :param stopping_threshold: stop as soon as the metric reaches this value.
    """

    priority = "LOWEST"

    def __init__(
        self,
        monitor: str,
        rule: str | None = None,
        min_delta: float = 0.1,
        strict: bool = False,
        check_finite: bool = True,
        patience: int = 5,
        stopping_threshold: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigTypeError(
                f"EarlyStoppingHook monitor must be a metric key, got {monitor!r}",
                where=f"{_WHERE}.monitor",
            )
        if min_delta < 0:
            raise ConfigValueError(
                f"EarlyStoppingHook min_delta must be >= 0, got {min_delta}",
                where=f"{_WHERE}.min_delta",
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ConfigValueError(
                f"EarlyStoppingHook patience must be an int >= 0, got {patience!r}",
                where=f"{_WHERE}.patience",
            )
        self.monitor = monitor
        self.rule = check_rule(rule, f"{_WHERE}.rule", ConfigValueError) or infer_rule(
            monitor, DEFAULT_GREATER_KEYS, DEFAULT_LESS_KEYS, where=f"{_WHERE}.monitor"
        )
        self.min_delta = float(min_delta)
        self.strict = strict
        self.check_finite = check_finite
        self.patience = patience
        self.stopping_threshold = stopping_threshold
        #: The best value seen, as the metrics reported it (a float or a tensor); starts at
        #: the worst possible value (-inf for ``greater``, inf for ``less``).
        self.best_score: Any = -math.inf if self.rule == "greater" else math.inf
        self._best = float(self.best_score)
        self.wait_count = 0
        # None: driven by hand; False: a runner that is not training; True: training.
        self._training: bool | None = None

    def before_run(self, runner: Any) -> None:
        """Check that the train loop (if one is built) can be stopped."""
        self._training = False
        if hasattr(type(runner), "train_loop_if_built"):
            loop = runner.train_loop_if_built  # a torchkiln Runner: never build the loop here
        else:
            loop = getattr(runner, "train_loop", None)
        if loop is not None:
            self._check_loop(loop)

    def before_train(self, runner: Any) -> None:
        """Check that the train loop can be stopped; pick up state restored by a resume."""
        self._training = True
        self._check_loop(runner.train_loop)
        state = runner.message_hub.get_info(_STATE_KEY)
        if isinstance(state, Mapping) and state.get("monitor") == self.monitor:
            best = state.get("best_score")
            if best is not None:
                self.best_score = self._best = float(best)
            self.wait_count = int(state.get("wait_count", 0))

    @staticmethod
    def _check_loop(loop: Any) -> None:
        if not hasattr(loop, "stop_training"):
            raise ConfigAssertionError(
                f"EarlyStoppingHook needs a train loop with a stop_training attribute; {type(loop).__name__} has none",
                where=_WHERE,
                hint=(
                    "derive custom loops from EpochBasedTrainLoop or IterBasedTrainLoop, "
                    "or set self.stop_training = False in yours"
                ),
            )

    def after_train(self, runner: Any) -> None:
        """Validation after training (``runner.val()``) does not count."""
        self._training = False

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Update the best score and the wait count; stop training when it is time."""
        if self._training is False:
            return
        metrics = metrics or {}
        if self.monitor not in metrics:
            message = f"EarlyStoppingHook: metric {self.monitor!r} is not among the validation metrics {sorted(metrics)}"
            if self.strict:
                raise ConfigRuntimeError(
                    message,
                    where=f"{_WHERE}.monitor",
                    hint=did_you_mean(self.monitor, list(metrics)) or "or set strict=False",
                )
            warnings.warn(message, stacklevel=2)
            runner.logger.warning(message)
            return
        value = metrics[self.monitor]
        item = getattr(value, "item", None)
        score = float(item() if callable(item) else value)
        stop, reason = self._check(score)
        if self._best == score:
            self.best_score = value
        best = self._best if math.isfinite(self._best) else None
        runner.message_hub.update_info(
            _STATE_KEY,
            {"monitor": self.monitor, "best_score": best, "wait_count": self.wait_count},
        )
        if stop:
            runner.train_loop.stop_training = True
            runner.logger.info(f"Early stopping: {reason}")

    def _check(self, score: float) -> tuple[bool, str]:
        best_text = f"{self._best:.4f}" if math.isfinite(self._best) else "none"
        if self.check_finite and not math.isfinite(score):
            return True, f"{self.monitor} = {score} is not finite (best so far {best_text})"
        threshold = self.stopping_threshold
        if threshold is not None and (
            score >= threshold if self.rule == "greater" else score <= threshold
        ):
            if improves(score, self._best, self.rule):
                self._best = score
            return True, f"{self.monitor} = {score:.4f} reached the stopping threshold {threshold}"
        if improves(score, self._best, self.rule, self.min_delta):
            self._best = score
            self.wait_count = 0
            return False, ""
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return True, (
                f"{self.monitor} has not improved by {self.min_delta} for {self.wait_count} validations "
                f"(best {best_text})"
            )
        return False, ""
