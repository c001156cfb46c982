"""Checking component dicts (``{type: Name, **kwargs}``) against their registries.

For every place where the engine knows which registry a component comes from, the ``type``
is looked up (importing the component's module, so this runs in ``config validate``, never
in ``config show``) and the keyword arguments are checked against its signature with
:func:`torchkiln.registry.check_kwargs`. Arguments the engine passes itself (``params`` for
an optimizer, ``optimizer`` for a scheduler, ``runner`` and ``dataloader`` for a loop) count
as given. A class that takes ``**kwargs`` accepts anything. Where a place's shape is open
(a custom optimizer-wrapper constructor's sections) only what is sure is checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln import registry as reg
from torchkiln.config.report import KeyPath, Reporter
from torchkiln.errors import BuildError, ConfigError, PluginError, TorchkilnError, did_you_mean

__all__ = ["ComponentChecker"]

# keys the engine itself reads from a component dict and never passes to the constructor
_ENGINE_KEYS = ("type", "_scope_")
# read by torchkiln.optim.scheduler.builder before the scheduler is built
_SCHEDULER_ENGINE_KEYS = ("convert_to_iter_based",)


class ComponentChecker:
    """Walks a config and checks each component dict whose registry is known.

    :param reporter: where the errors go.
    """

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    # ------------------------------------------------------------------ one component
    def component(
        self,
        value: Any,
        registry: reg.Registry,
        path: KeyPath,
        *,
        injected: Sequence[str] = (),
        default_type: str | None = None,
        engine_keys: Sequence[str] = (),
        required: bool = True,
        function: bool = False,
    ) -> Any:
        """Check one component dict; return the resolved class (or None).

        :param injected: arguments the engine passes itself.
        :param default_type: the type used when the dict has none; an unknown default is
            not the user's mistake and is skipped silently.
        :param engine_keys: more keys the engine consumes before building (``priority``).
        :param required: whether a missing ``type`` (with no default) is an error.
        :param function: the component is a function called later with its first argument
            (``collate_fn``), so missing arguments are not checked.
        """
        if function and isinstance(value, str):
            value = {"type": value}  # a function given by its registered name
        if not isinstance(value, Mapping):
            return None
        path = tuple(path)
        explicit = "type" in value
        obj_type = value.get("type", default_type)
        if obj_type is None:
            if required:
                self.reporter.error(
                    path,
                    f"a {registry.name} component needs a 'type' key",
                    hint=f"add type: <Name> (see `torchkiln plugins` for the names in {registry.name})",
                )
            return None
        if explicit and not isinstance(obj_type, str) and not callable(obj_type):
            self.reporter.error(
                (*path, "type"), f"'type' must be a component name, got {type(obj_type).__name__}"
            )
            return None
        scope = value.get("_scope_")
        try:
            obj = registry.get(obj_type, default_scope=scope if isinstance(scope, str) else None)
        except (BuildError, PluginError) as exc:
            if explicit:
                self.reporter.add(exc, (*path, "type"))
            return None
        except TorchkilnError as exc:
            self.reporter.add(exc, (*path, "type"))
            return None
        kwargs = {k: v for k, v in value.items() if k not in _ENGINE_KEYS and k not in engine_keys}
        self._check_arguments(obj, kwargs, registry, path, injected, function)
        return obj

    def _check_arguments(
        self,
        obj: Any,
        kwargs: Mapping[str, Any],
        registry: reg.Registry,
        path: tuple[Any, ...],
        injected: Sequence[str],
        function: bool,
    ) -> None:
        params = reg.signature_params(obj)
        if params is None:
            return
        accepted, var_kw, _ = params
        if var_kw:
            return
        what = f"{registry.name}.{getattr(obj, '__name__', repr(obj))}"
        every = dict.fromkeys(accepted)
        for key, val in kwargs.items():
            if key in accepted:
                continue
            try:
                reg.check_kwargs(obj, {**every, key: val}, what)
            except BuildError as exc:
                self.reporter.add(exc, (*path, key))
            else:  # check_kwargs accepted it after all; say it in our words
                self.reporter.error(
                    (*path, key),
                    f"{what} got an unexpected argument {key!r}",
                    hint=did_you_mean(key, accepted),
                )
        if function:
            return
        given = {k: v for k, v in kwargs.items() if k in accepted}
        given.update(dict.fromkeys(n for n in injected if n in accepted))
        try:
            reg.check_kwargs(obj, given, what)
        except BuildError as exc:
            self.reporter.add(exc, path)

    # ------------------------------------------------------------------ the config
    def check(self, data: Mapping[str, Any]) -> None:
        """Check every component dict of ``data`` whose registry is known."""
        self.model(data.get("model"))
        self.component(
            data.get("data_preprocessor"), reg.MODELS, ("data_preprocessor",), required=False
        )
        for split in ("train", "val", "test"):
            self.dataloader(data.get(f"{split}_dataloader"), (f"{split}_dataloader",))
        # by_epoch next to a custom loop's type is reported by the loop rules already
        self.loop(
            data.get("train_cfg"),
            ("train_cfg",),
            ("runner", "dataloader"),
            engine_keys=("by_epoch",),
        )
        for split in ("val", "test"):
            self.loop(
                data.get(f"{split}_cfg"), (f"{split}_cfg",), ("runner", "dataloader", "evaluator")
            )
        self.optim_wrapper(data.get("optim_wrapper"), ("optim_wrapper",))
        self.param_scheduler(data.get("param_scheduler"), ("param_scheduler",))
        for split in ("val", "test"):
            self.evaluator(data.get(f"{split}_evaluator"), (f"{split}_evaluator",))
        self.hooks(data.get("default_hooks"), data.get("custom_hooks"))
        self.component(
            data.get("log_processor"),
            reg.LOG_PROCESSORS,
            ("log_processor",),
            default_type="LogProcessor",
        )
        self.visualizer(data.get("visualizer"), ("visualizer",))
        self.plugin_options(data.get("plugins"))
        self.component(
            data.get("model_wrapper_cfg"),
            reg.MODEL_WRAPPERS,
            ("model_wrapper_cfg",),
            injected=("module",),
            required=False,
        )

    def dataloader(self, value: Any, path: KeyPath) -> None:
        """The dataset, sampler, batch sampler, collate and worker-init functions of a dataloader."""
        if not isinstance(value, Mapping):
            return
        path = tuple(path)
        self.component(value.get("dataset"), reg.DATASETS, (*path, "dataset"))
        self.component(
            value.get("sampler"),
            reg.DATA_SAMPLERS,
            (*path, "sampler"),
            injected=("dataset", "seed"),
        )
        self.component(
            value.get("batch_sampler"),
            reg.DATA_SAMPLERS,
            (*path, "batch_sampler"),
            injected=("sampler", "batch_size", "dataset"),
        )
        for key in ("collate_fn", "worker_init_fn"):
            self.component(value.get(key), reg.FUNCTIONS, (*path, key), function=True)

    def loop(
        self, value: Any, path: KeyPath, injected: Sequence[str], engine_keys: Sequence[str] = ()
    ) -> None:
        """A custom loop (``train_cfg``/``val_cfg``/``test_cfg`` with a ``type``)."""
        if isinstance(value, Mapping) and "type" in value:
            self.component(value, reg.LOOPS, path, injected=injected, engine_keys=engine_keys)

    def optim_wrapper(self, value: Any, path: KeyPath) -> None:
        """One wrapper with its optimizer, or the sections of a custom constructor."""
        if not isinstance(value, Mapping):
            return
        path = tuple(path)
        constructor = value.get("constructor")
        if constructor not in (None, "DefaultOptimWrapperConstructor"):
            try:
                reg.OPTIM_WRAPPER_CONSTRUCTORS.get(constructor)
            except TorchkilnError as exc:
                self.reporter.add(exc, (*path, "constructor"))
            # A custom constructor reads its own layout; check only sections that are
            # plainly optimizer wrappers (they have an optimizer dict).
            for name, section in value.items():
                if isinstance(section, Mapping) and isinstance(section.get("optimizer"), Mapping):
                    self._wrapper_section(section, (*path, name))
            if isinstance(value.get("optimizer"), Mapping):
                self._wrapper_section(value, path)
            return
        if "optimizer" not in value:
            self.reporter.error(
                path,
                "optim_wrapper needs an 'optimizer'",
                hint="e.g. optim_wrapper: {optimizer: {type: SGD, lr: 0.01}}; several optimizers need a 'constructor'",
            )
        self._wrapper_section(value, path)

    def _wrapper_section(self, value: Mapping[str, Any], path: tuple[Any, ...]) -> None:
        self.component(
            value.get("optimizer"), reg.OPTIMIZERS, (*path, "optimizer"), injected=("params",)
        )
        self.component(
            value,
            reg.OPTIM_WRAPPERS,
            path,
            default_type="OptimWrapper",
            engine_keys=("constructor", "paramwise_cfg"),
            injected=("optimizer",),
        )

    def param_scheduler(self, value: Any, path: KeyPath) -> None:
        """One scheduler, a list, or a dict of lists (one per optimizer of an OptimWrapperDict)."""
        path = tuple(path)
        if isinstance(value, Mapping) and "type" not in value:
            for name, item in value.items():
                self.param_scheduler(item, (*path, name))
            return
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(value, list) else path
            self.component(
                item,
                reg.PARAM_SCHEDULERS,
                where,
                injected=("optimizer",),
                engine_keys=_SCHEDULER_ENGINE_KEYS,
            )

    def evaluator(self, value: Any, path: KeyPath) -> None:
        """A metric, a list of metrics, or an evaluator dict with ``metrics``."""
        path = tuple(path)
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.component(item, reg.METRICS, (*path, i))
            return
        if not isinstance(value, Mapping):
            return
        if "metrics" in value or (
            isinstance(value.get("type"), str) and value["type"] in reg.EVALUATOR
        ):
            self.component(value, reg.EVALUATOR, path, default_type="Evaluator")
            metrics = value.get("metrics")
            if metrics is not None:
                self.evaluator(metrics, (*path, "metrics"))
            return
        self.component(value, reg.METRICS, path)

    def hooks(self, default_hooks: Any, custom_hooks: Any) -> None:
        """``default_hooks`` values (``null`` removes one) and ``custom_hooks`` items.

        A ``default_hooks`` entry is checked as the runner sees it: merged into the default
        hook of the same name (:func:`torchkiln.hooks.defaults.merge_default_hooks`), so
        ``logger: {interval: 5}`` needs no ``type``.
        """
        from torchkiln.hooks.defaults import merge_default_hooks

        if isinstance(default_hooks, Mapping):
            for name, item in default_hooks.items():
                path = ("default_hooks", name)
                try:
                    merged = merge_default_hooks({name: item}).get(name)
                except ConfigError as exc:
                    self.reporter.error(path, exc.message, hint=exc.hint)
                    continue
                self.component(merged, reg.HOOKS, path, engine_keys=("priority",))
        if isinstance(custom_hooks, list):
            for i, item in enumerate(custom_hooks):
                self.component(item, reg.HOOKS, ("custom_hooks", i), engine_keys=("priority",))

    def model(self, value: Any) -> None:
        """The model: a registered type that is a BaseModel (it has ``train_step``)."""
        cls = self.component(value, reg.MODELS, ("model",))
        if isinstance(cls, type):
            from torchkiln.model.model_checks import plain_module_message

            problem = plain_module_message(cls)
            if problem is not None:
                message, hint = problem
                self.reporter.error(("model", "type"), message, hint=hint)

    def plugin_options(self, value: Any) -> None:
        """``plugins.options`` names installed hook plugins."""
        if not isinstance(value, Mapping) or not isinstance(value.get("options"), Mapping):
            return
        from torchkiln.plugin_host.entry_points import GROUP, check_option_names
        from torchkiln.registry import _index

        try:
            check_option_names(value["options"], _index.entry_points_by_group().get(GROUP, []))
        except ConfigError as exc:
            self.reporter.error(tuple(str(exc.where).split(".")), exc.message, hint=exc.hint)

    def visualizer(self, value: Any, path: KeyPath) -> None:
        """The visualizer's type and its ``vis_backends``."""
        if not isinstance(value, Mapping):
            return
        from torchkiln.visualization.visualizer import visualizer_class

        try:
            visualizer_class(value.get("type"))
        except ConfigError as exc:
            self.reporter.error((*tuple(path), "type"), exc.message, hint=exc.hint)
        backends = value.get("vis_backends")
        if isinstance(backends, list):
            for i, item in enumerate(backends):
                self.component(
                    item, reg.VISBACKENDS, (*tuple(path), "vis_backends", i), injected=("save_dir",)
                )
