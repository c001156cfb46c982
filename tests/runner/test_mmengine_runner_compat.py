"""Runner behaviour code written for MMEngine relies on: lazy loop fields, build_* type
errors, subclasses with MMEngine's __init__ signature, _has_loaded, scale_lr defaults."""

from __future__ import annotations

import pytest
import torch
from kiln_toys import ToyModel, make_loader

from torchkiln import Runner
from torchkiln.config import Config
from torchkiln.errors import ConfigError
from torchkiln.logging import LogProcessor
from torchkiln.registry import LOG_PROCESSORS, MODELS


@pytest.fixture(autouse=True)
def _no_entry_point_plugins(monkeypatch):
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")


def _args(tmp_path, **kw):
    args = dict(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(progress_bar=None, checkpoint=None),
    )
    args.update(kw)
    return args


class MMEngineStyleRunner(Runner):
    """A subclass with MMEngine's __init__ arguments only (no compile, plugins, ...)."""

    def __init__(self, model, work_dir, train_dataloader=None, val_dataloader=None,
                 test_dataloader=None, train_cfg=None, val_cfg=None, test_cfg=None,
                 auto_scale_lr=None, optim_wrapper=None, param_scheduler=None,
                 val_evaluator=None, test_evaluator=None, default_hooks=None,
                 custom_hooks=None, data_preprocessor=None, load_from=None, resume=False,
                 launcher="none", env_cfg=None, log_processor=None, log_level="INFO",
                 visualizer=None, default_scope=None, randomness=None, experiment_name=None,
                 cfg=None):  # fmt: skip
        super().__init__(
            model, work_dir, train_dataloader=train_dataloader, train_cfg=train_cfg,
            optim_wrapper=optim_wrapper, default_hooks=default_hooks, cfg=cfg,
        )  # fmt: skip


def test_from_cfg_builds_a_subclass_with_mmengine_arguments_only(tmp_path):
    MODELS.register_module(module=ToyModel, force=True)
    cfg = Config(
        dict(
            model=dict(type="ToyModel"),
            work_dir=str(tmp_path),
            compile={"mode": "default"},
            default_hooks=dict(progress_bar=None, checkpoint=None),
        )
    )
    runner = MMEngineStyleRunner.from_cfg(cfg)
    assert isinstance(runner, MMEngineStyleRunner)
    assert runner._compile == {"mode": "default"}  # read from cfg by Runner.__init__


def test_loops_hold_their_configs_until_built(tmp_path):
    runner = Runner(**_args(tmp_path))
    assert runner._train_loop == dict(by_epoch=True, max_epochs=1)
    assert runner.train_loop_if_built is None and runner.epoch == 0
    runner.train()
    assert runner.train_loop_if_built is runner._train_loop and runner.epoch == 1


def test_missing_phase_says_its_loop_should_not_be_None(tmp_path):
    args = _args(tmp_path)
    for key in ("train_dataloader", "train_cfg", "optim_wrapper"):
        args.pop(key)
    runner = Runner(**args)
    for phase in (runner.train, runner.val, runner.test):
        with pytest.raises(RuntimeError, match="should not be None"):
            phase()


def test_build_methods_refuse_wrong_types(tmp_path):
    runner = Runner(**_args(tmp_path))
    for build in (runner.build_train_loop, runner.build_val_loop, runner.build_test_loop):
        with pytest.raises(TypeError, match="should be a loop object or a config dict"):
            build("invalid-type")
    with pytest.raises(RuntimeError, match=r"Only one of train_cfg\.type and train_cfg\.by_epoch"):
        runner.build_train_loop(dict(type="EpochBasedTrainLoop", by_epoch=True, max_epochs=1))
    with pytest.raises(TypeError, match="optimizer wrapper should be"):
        runner.build_optim_wrapper("invalid-type")

    from torchkiln.evaluation import BaseMetric, Evaluator

    class Metric(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(1)

        def compute_metrics(self, results):
            return {"n": len(results)}

    with pytest.raises(TypeError, match="evaluator should be"):
        runner.build_evaluator(Metric())
    assert isinstance(runner.build_evaluator([Metric()]), Evaluator)


def test_param_schedulers_need_a_built_optimizer_wrapper(tmp_path):
    runner = Runner(**_args(tmp_path))
    with pytest.raises(AssertionError, match="should be called before"):
        runner.build_param_scheduler(dict(type="MultiStepLR", milestones=[1]))


def test_has_loaded_and_scale_lr_defaults(tmp_path):
    runner = Runner(**_args(tmp_path, auto_scale_lr=dict(enable=True, base_batch_size=2)))
    assert runner._has_loaded is False
    path = tmp_path / "weights.pth"
    torch.save(runner.model.state_dict(), path)
    runner.load_checkpoint(str(path))
    assert runner._has_loaded is True

    wrapper = runner.build_optim_wrapper(dict(optimizer=dict(type="SGD", lr=0.1)))
    runner.scale_lr(wrapper)  # the run's auto_scale_lr: batch 4 / base 2
    assert wrapper.param_groups[0]["lr"] == pytest.approx(0.2)
    with pytest.raises(AssertionError, match="base_batch_size"):
        runner.scale_lr(wrapper, dict(enable=True))


def test_a_single_process_runs_sync_batchnorm_as_batchnorm(tmp_path):
    model = ToyModel()
    model.bn = torch.nn.SyncBatchNorm(2)
    runner = Runner(**_args(tmp_path, model=model))
    assert not isinstance(runner.model.bn, torch.nn.SyncBatchNorm)


def test_log_processor_check_custom_cfg_mmengine_style():
    @LOG_PROCESSORS.register_module(force=True)
    class SubProcessor(LogProcessor):
        def __init__(self, window_size=10, by_epoch=True, custom_cfg=None):
            self.window_size = window_size
            self.by_epoch = by_epoch
            self.custom_cfg = custom_cfg if custom_cfg else []
            self._check_custom_cfg()

    processor = SubProcessor(custom_cfg=[dict(data_src="loss", method_name="max", log_name="m")])
    assert processor.custom_cfg == [
        {"data_src": "loss", "method": "max", "window_size": 10, "log_name": "m"}
    ]
    with pytest.raises(AssertionError):
        LogProcessor(by_epoch=False, custom_cfg=[dict(data_src="loss", window_size="epoch")])


def test_call_hook_calls_a_custom_loop_stage_on_every_hook_that_has_it(tmp_path):
    calls = []

    class Warmup:
        priority = "LOW"

        def before_warmup_iter(self, runner, data_batch=None):
            calls.append(("low", data_batch))

    class Early(Warmup):
        priority = "HIGH"

        def before_warmup_iter(self, runner, data_batch=None):
            calls.append(("high", data_batch))

    runner = Runner(**_args(tmp_path, custom_hooks=[Warmup(), Early()]))
    runner.call_hook("before_warmup_iter", data_batch=7)
    assert calls == [("high", 7), ("low", 7)]


def test_loop_facts_on_the_runner_and_val_interval_shown_to_hooks(tmp_path):
    seen = []

    class Record:
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.append(runner.train_loop.val_interval)

    runner = Runner(
        **_args(
            tmp_path,
            train_cfg=dict(by_epoch=False, max_iters=6, val_interval=4, dynamic_intervals=[[5, 2]]),
            custom_hooks=[Record()],
        )
    )
    assert runner.model_name == "ToyModel"
    runner.train()
    assert seen == [4, 4, 4, 4, 2, 2]  # the interval in force for each iteration
    assert runner.val_interval == 2 and runner.val_begin == 1


def test_a_module_without_some_steps_is_refused_by_the_phase_that_needs_them(tmp_path):
    class OnlyTrains(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def train_step(self, data, optim_wrapper):
            return {"loss": torch.tensor(1.0)}

    runner = Runner(**_args(tmp_path, model=OnlyTrains()))
    runner.train()
    assert runner.iter == 2
    evaluated = Runner(
        **_args(
            tmp_path / "v",
            model=OnlyTrains(),
            val_dataloader=make_loader(4, 2),
            val_cfg=dict(),
            val_evaluator=[dict(type="Accuracy")],
        )
    )
    with pytest.raises(AssertionError, match="If you want to validate during training"):
        evaluated.train()
    with pytest.raises(ConfigError, match="has no val_step"):
        evaluated.val()


def test_param_scheduler_shape_is_checked_at_construction(tmp_path):
    with pytest.raises(TypeError, match="`param_scheduler` should be a"):
        Runner(**_args(tmp_path, param_scheduler="error_type"))
    with pytest.raises(AssertionError, match="Each value of `param_scheduler`"):
        Runner(**_args(tmp_path, param_scheduler=dict(linear1="error_type")))


def test_run_logger_knows_its_text_log_file(tmp_path):
    runner = Runner(**_args(tmp_path))
    runner.train()
    with open(runner.logger._log_file) as f:
        assert "Epoch(train) [1][2/2]" in f.read()


def test_an_unknown_collate_fn_name_is_a_type_error():
    from torchkiln.data import build_dataloader

    with pytest.raises(TypeError, match="collate_fn should be a dict or callable object"):
        build_dataloader(
            dict(dataset=make_loader(4, 2).dataset, batch_size=2, collate_fn="no_such_function")
        )


def test_compile_applies_to_the_step_of_each_phase(tmp_path):
    runner = Runner(
        **_args(
            tmp_path,
            compile=dict(backend="eager"),
            val_dataloader=make_loader(4, 2),
            val_cfg=dict(),
            val_evaluator=[dict(type="Accuracy")],
        )
    )
    plain_val_step = runner.model.val_step
    runner._maybe_compile("val_step")
    assert runner.model.val_step is not plain_val_step
    compiled = runner.model.val_step
    runner._maybe_compile("val_step")  # once only
    assert runner.model.val_step is compiled
    with open(runner.logger._log_file) as f:
        assert f.readlines()[-1].endswith("please be patient.\n")


def test_build_optim_wrapper_from_built_optimizers(tmp_path):
    from torchkiln.optim import OptimWrapper, OptimWrapperDict

    runner = Runner(**_args(tmp_path))
    optimizer = torch.optim.SGD(runner.model.parameters(), lr=0.1)
    wrapper = runner.build_optim_wrapper(dict(optimizer=optimizer, accumulative_counts=2))
    assert isinstance(wrapper, OptimWrapper) and wrapper.optimizer is optimizer
    assert wrapper._accumulative_counts == 2
    built = runner.build_optim_wrapper(dict(a=OptimWrapper(optimizer)))
    assert isinstance(built, OptimWrapperDict)
    with pytest.raises(ValueError, match="each item mush be an optimizer object") as info:
        runner.build_optim_wrapper(dict(a=OptimWrapper(optimizer), b=dict(type="OptimWrapper")))
    assert info.value.where == "optim_wrapper.b"
