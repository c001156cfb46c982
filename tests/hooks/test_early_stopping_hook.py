"""EarlyStoppingHook: patience, min_delta, threshold, non-finite values, missing keys."""

from __future__ import annotations

import math

import pytest

from torchkiln.errors import ConfigError
from torchkiln.hooks.early_stopping_hook import EarlyStoppingHook


def _feed(runner, hook, scores, key="acc"):
    """Validate with each score in turn; return the 1-based validation that stopped, or None."""
    hook.before_train(runner)
    for n, score in enumerate(scores, 1):
        hook.after_val_epoch(runner, {key: score})
        if runner.train_loop.stop_training:
            return n
    return None


def test_patience_counts_validations_without_improvement(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=2, min_delta=0.0)
    assert _feed(runner, hook, [0.5, 0.6, 0.6, 0.55, 0.7]) == 4
    assert hook.best_score == 0.6 and hook.wait_count == 2
    assert any("has not improved" in m for m in runner.logger.messages("info"))


def test_min_delta(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=2, min_delta=0.1)
    # 0.55 and 0.65 are within 0.1 of the best (0.5): no improvement; 0.6 would be.
    assert _feed(runner, hook, [0.5, 0.55, 0.59]) == 3
    runner2 = make_runner()
    hook2 = EarlyStoppingHook("acc", patience=2, min_delta=0.1)
    assert _feed(runner2, hook2, [0.5, 0.6, 0.65, 0.7]) is None
    assert hook2.best_score == 0.7 and hook2.wait_count == 0


def test_less_rule_from_name(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("val_loss", patience=1, min_delta=0.0)
    assert hook.rule == "less"
    assert _feed(runner, hook, [1.0, 0.8, 0.9], key="val_loss") == 3


def test_stopping_threshold(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc", stopping_threshold=0.9, patience=10)
    assert _feed(runner, hook, [0.5, 0.91, 0.95]) == 2
    assert any("stopping threshold" in m for m in runner.logger.messages("info"))


def test_non_finite_stops(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("loss", patience=10)
    assert _feed(runner, hook, [1.0, math.nan], key="loss") == 2
    runner2 = make_runner()
    hook2 = EarlyStoppingHook("loss", patience=10, check_finite=False)
    assert _feed(runner2, hook2, [1.0, math.inf], key="loss") is None


def test_missing_monitor_warns_or_raises(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc")
    hook.before_train(runner)
    with pytest.warns(UserWarning, match="'acc'"):
        hook.after_val_epoch(runner, {"accuracy": 0.5})
    assert not runner.train_loop.stop_training
    strict = EarlyStoppingHook("acc/top2", strict=True)
    strict.before_train(runner)
    with pytest.raises(ConfigError, match="acc/top2") as info:
        strict.after_val_epoch(runner, {"acc/top1": 0.5})
    assert "did you mean 'acc/top1'" in str(info.value)


def test_state_survives_resume_through_the_hub(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=3, min_delta=0.0)
    _feed(runner, hook, [0.5, 0.4, 0.3])
    assert runner.message_hub.get_info("early_stopping") == {"monitor": "acc", "best_score": 0.5, "wait_count": 2}
    resumed = make_runner()
    resumed.message_hub.load_state_dict(runner.message_hub.state_dict())
    hook2 = EarlyStoppingHook("acc", patience=3, min_delta=0.0)
    assert _feed(resumed, hook2, [0.45]) == 1


def test_validation_outside_training_is_ignored(make_runner):
    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=1)
    hook.before_run(runner)  # a runner that is not training (runner.val())
    hook.after_val_epoch(runner, {"acc": math.nan})
    assert not runner.train_loop.stop_training
    hook.before_train(runner)
    hook.after_train(runner)  # training is over
    hook.after_val_epoch(runner, {"acc": math.nan})
    assert not runner.train_loop.stop_training


def test_driven_by_hand(make_runner):
    """Without before_run the hook counts every validation, warns (UserWarning) about a
    missing key, keeps the best value as reported and starts from the worst value."""
    import warnings

    import torch

    runner = make_runner()
    hook = EarlyStoppingHook("acc", patience=0)
    assert hook.best_score == -math.inf and EarlyStoppingHook("loss").best_score == math.inf
    with pytest.warns(UserWarning, match="'acc'"):
        hook.after_val_epoch(runner, {"top1": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hook.after_val_epoch(runner, {"acc": torch.tensor(0.5)})
    assert isinstance(hook.best_score, torch.Tensor) and hook.best_score.item() == 0.5
    hook.after_val_epoch(runner, {"acc": 0.5})  # no improvement, patience 0: stop
    assert runner.train_loop.stop_training


def test_before_run_checks_the_loop():
    import types

    runner = types.SimpleNamespace(train_loop=object())
    with pytest.raises(AssertionError, match="stop_training"):
        EarlyStoppingHook("acc").before_run(runner)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="cannot tell"):
        EarlyStoppingHook("foo")
    with pytest.raises(ConfigError, match="patience"):
        EarlyStoppingHook("acc", patience=-1)
    with pytest.raises(ConfigError, match="rule"):
        EarlyStoppingHook("acc", rule="up")
    assert EarlyStoppingHook("foo", rule="greater").rule == "greater"


def test_an_unknown_rule_is_a_value_error():
    with pytest.raises(ValueError, match="rule"):
        EarlyStoppingHook("accuracy/top1", rule="the world")
