"""Experiment trackers as vis backends: the machinery every tracker plugin shares.

A tracker (MLflow, Weights & Biases, ...) is a :class:`TrackingVisBackend` subclass that
implements a handful of store operations (open or reopen a run, log metrics, params, text,
a file; read back the steps a run already holds; finish it). This base class does the rest:

- **One tracking run per training run, across resumes.** The run is opened lazily (at
  ``before_train`` or the first record), never at construction, because only then is it known
  whether the run resumes. Its id goes into every checkpoint (``meta['tracking'][<backend>]``,
  through the backend's hook plugin, see :class:`TrackingHookPlugin`); ``--resume`` reopens it.
- **No duplicate steps.** On reopening, the backend asks the store for the last step of every
  key and drops records at or below it, so iterations replayed after a crash are not logged
  twice; within a run, steps only move forward per key.
- **The whole config** as flattened params (``optim_wrapper.optimizer.lr``), cut to the
  store's key and value limits, and the config text as an artifact.
- **Checkpoints as artifacts**, opt-in (``log_checkpoints: none | best | last | all``), through
  ``runner.checkpointer.add_listener``: the finished file is hard-linked into a staging folder
  (so retention cannot delete it first) and uploaded by the backend's worker thread.
- **Never blocking training.** Every store call runs on one worker thread fed by a bounded
  queue, in order; :meth:`flush` waits for it (end of epoch, end of run, on signals).
- **Failures.** A store that cannot be opened is a :class:`~torchkiln.errors.ConfigError`
  at start-up naming the backend and the setting; a failure mid-run is logged once (later
  ones are counted and reported at close) and never stops training.

Ranks other than 0 get no backends (see :mod:`torchkiln.visualization.visualizer`), so they
neither open runs nor wait on a store.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.visualization.vis_backend import BaseVisBackend

__all__ = [
    "LOG_CHECKPOINTS",
    "META_KEY",
    "STAGING_DIR",
    "TrackingHookPlugin",
    "TrackingVisBackend",
    "flatten_config",
]

#: The checkpoint ``meta`` key under which each tracking backend stores its run.
META_KEY = "tracking"

#: Values of ``log_checkpoints`` and the checkpoint kinds each uploads.
LOG_CHECKPOINTS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "best": frozenset({"best"}),
    "last": frozenset({"periodic", "stop"}),
    "all": frozenset({"periodic", "stop", "best", "other"}),
}

#: Sub-folder of a backend's ``save_dir`` where checkpoint files wait for their upload.
STAGING_DIR = ".staged_checkpoints"

_STOP = object()


def flatten_config(
    config: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    max_key_length: int | None = None,
    max_value_length: int | None = None,
) -> dict[str, str]:
    """A nested config as ``{"a.b.c": "value"}`` strings, as trackers take params.

    Lists of dicts are indexed (``param_scheduler.0.type``); other lists stay one value.

    :param keys: only the top-level keys (or dotted prefixes) listed; all when None.
    :param max_key_length: keys longer than this are left out (a tracker rejects them).
    :param max_value_length: values longer than this are cut, ending in ``...``.
    """
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, Mapping) for v in value)
        ):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        else:
            flat[prefix] = _param_text(value)

    walk("", config)
    if keys is not None:
        wanted = tuple(keys)
        flat = {
            k: v for k, v in flat.items() if any(k == w or k.startswith(w + ".") for w in wanted)
        }
    if max_key_length is not None:
        flat = {k: v for k, v in flat.items() if len(k) <= max_key_length}
    if max_value_length is not None:
        flat = {
            k: v if len(v) <= max_value_length else v[: max_value_length - 3] + "..."
            for k, v in flat.items()
        }
    return flat


def _param_text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{}"
    return str(value)


class TrackingVisBackend(BaseVisBackend):
    """A vis backend that logs into an experiment tracker's run (see the module docstring).

    Subclasses implement the ``_store_*`` methods (called on the worker thread, except
    :meth:`_store_check` and :meth:`_store_open`, called on the thread that opens the run)
    and name their state in the checkpoint with :attr:`state_key`.

    :param save_dir: the backend's folder (``<log_dir>/vis_data`` in a run).
    :param log_checkpoints: ``none``, ``best``, ``last`` (each periodic or stop checkpoint)
        or ``all``: checkpoint files uploaded as artifacts.
    :param queue_size: records waiting for the worker before :meth:`add_scalars` waits.
    """

    #: Short name used in messages and as the key in ``meta['tracking']``.
    state_key = "tracker"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        log_checkpoints: str = "none",
        queue_size: int = 1000,
    ) -> None:
        super().__init__(save_dir)
        if log_checkpoints not in LOG_CHECKPOINTS:
            raise ConfigError(
                f"{type(self).__name__} log_checkpoints must be one of {', '.join(LOG_CHECKPOINTS)}, got {log_checkpoints!r}",
                where=f"visualizer.vis_backends ({type(self).__name__}).log_checkpoints",
            )
        self.log_checkpoints = log_checkpoints
        self.run_id: str | None = None
        self._resume_from: dict[str, Any] | None = None
        self._pending_config: tuple[dict[str, Any], str] | None = None
        self._last_steps: dict[str, int] = {}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._logger: Any = None
        self._status = "FINISHED"
        self._runner_info: dict[str, Any] = {}
        self._attached_to: int | None = None
        self._staged = 0

    # ------------------------------------------------------------------ for subclasses
    def _store_open(self, resume: Mapping[str, Any] | None) -> tuple[str, dict[str, int]]:
        """Open a new run, or reopen ``resume`` (the state saved by :meth:`checkpoint_state`).

        :returns: the run id and, for a reopened run, the last step the store holds per key.
        """
        raise NotImplementedError

    def _store_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Log ``values`` at ``step``."""
        raise NotImplementedError

    def _store_params(self, params: Mapping[str, str], resumed: bool) -> None:
        """Log the flattened config (``resumed``: the run may hold them already)."""
        raise NotImplementedError

    def _store_text(self, text: str, name: str) -> None:
        """Store ``text`` as the artifact file ``name``."""
        raise NotImplementedError

    def _store_file(self, path: str, artifact_dir: str, kind: str) -> None:
        """Upload the file ``path``, keeping its name, into the artifact folder ``artifact_dir``
        (``kind``: the checkpoint kind)."""
        raise NotImplementedError

    def _store_finish(self, status: str) -> None:
        """End the run with ``status`` (``FINISHED``, ``KILLED`` or ``FAILED``)."""
        raise NotImplementedError

    def _state_extra(self) -> dict[str, Any]:
        """More of the run's state to keep in the checkpoint beside its id."""
        return {}

    def _on_attach(self, runner: Any) -> None:
        """Take what is needed from the runner when the run starts (before ``before_train``)."""

    def _on_train_start(self, runner: Any) -> None:
        """Called once the run is open, at ``before_train`` (e.g. to watch the model)."""

    # ------------------------------------------------------------------ run lifecycle
    def attach(self, runner: Any) -> None:
        """Connect to a runner: checkpoints are reported here, messages go to its logger."""
        if self._attached_to == id(runner):
            return
        self._attached_to = id(runner)
        self._logger = getattr(runner, "logger", None)
        self._runner_info = {
            "work_dir": getattr(runner, "work_dir", None),
            "log_dir": getattr(runner, "log_dir", None),
            "experiment_name": getattr(runner, "experiment_name", None),
        }
        self._on_attach(runner)
        checkpointer = getattr(runner, "checkpointer", None)
        if self.log_checkpoints != "none" and checkpointer is not None:
            checkpointer.add_listener(self.on_checkpoint)

    def offer_resume(self, state: Any) -> None:
        """Remember the run state found in a loaded checkpoint (used if the run resumes)."""
        self._resume_from = (
            dict(state) if isinstance(state, Mapping) and state.get("run_id") else None
        )

    def start(self, resumed: bool = False) -> str:
        """Open the run (reopen the checkpoint's run when ``resumed``); idempotent.

        :returns: the run id.
        """
        with self._lock:
            if self.run_id is not None:
                return self.run_id
            resume = self._resume_from if resumed else None
            try:
                run_id, last_steps = self._store_open(resume)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"{type(self).__name__} could not open its run: {type(exc).__name__}: {exc}",
                    where=f"visualizer.vis_backends ({type(self).__name__})",
                    hint="check the tracking settings (URI, project, directory) and that the store is reachable and writable",
                ) from None
            self.run_id = run_id
            self._last_steps = dict(last_steps)
            self._worker = threading.Thread(
                target=self._work, name=f"torchkiln-{self.state_key}", daemon=True
            )
            self._worker.start()
        if resume is not None:
            self._info(
                f"{type(self).__name__}: continuing run {run_id} after step {max(self._last_steps.values(), default=0)}"
            )
        if self._pending_config is not None:
            data, text = self._pending_config
            self._pending_config = None
            self._submit(self._log_config, data, text, resume is not None)
        return run_id

    def train_started(self, runner: Any, resumed: bool) -> None:
        """Open the run at ``before_train`` and let the subclass act on the runner."""
        self.start(resumed)
        self._on_train_start(runner)

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint keeps of this run (its id and backend-specific state)."""
        run_id = self.start()
        return {"run_id": run_id, **self._state_extra()}

    def set_status(self, status: str) -> None:
        """The status the run ends with (``FINISHED``, ``KILLED``, ``FAILED``)."""
        self._status = status

    # ------------------------------------------------------------------ data
    def add_config(self, config: Mapping[str, Any], text: str, **kwargs: Any) -> None:
        """Log the config as params and its text as an artifact once the run is open."""
        if self.run_id is None:
            self._pending_config = (dict(config), text)
        else:
            self._submit(self._log_config, dict(config), text, False)

    def _log_config(self, config: dict[str, Any], text: str, resumed: bool) -> None:
        self._store_params(self.config_params(config), resumed)
        self._store_text(text, "config.yaml")

    def config_params(self, config: Mapping[str, Any]) -> dict[str, str]:
        """The params logged for ``config`` (subclasses apply their selection and limits)."""
        return flatten_config(config)

    def add_scalar(self, name: str, value: float, step: int = 0, **kwargs: Any) -> None:
        """Log one scalar at ``step``."""
        self.add_scalars({name: value}, step)

    def add_scalars(
        self,
        scalar_dict: Mapping[str, float],
        step: int = 0,
        file_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Log scalars at ``step``; keys already logged at this step or later are dropped."""
        if self.run_id is None:
            self.start()
        step = int(step)
        last = self._last_steps
        values = {}
        for name, value in scalar_dict.items():
            if last.get(name, -1) < step:
                values[name] = value
                last[name] = step
        if values:
            self._submit(self._store_metrics, values, step)

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Images are not sent to trackers by default (subclasses may)."""

    # ------------------------------------------------------------------ checkpoints
    def on_checkpoint(self, path: str, kind: str) -> None:
        """Checkpointer listener: queue the upload of a finished checkpoint file per policy.

        ``last`` uploads every periodic or stop checkpoint as ``checkpoints/last.pth``
        (each replacing the one before, where the store allows); ``best`` and ``all`` keep
        the file names under ``checkpoints/``.
        """
        if kind not in LOG_CHECKPOINTS[self.log_checkpoints] or self.run_id is None:
            return
        name = "last.pth" if self.log_checkpoints == "last" else os.path.basename(path)
        staged = self._stage(path, name)
        if staged is not None:
            self._submit(self._upload_staged, staged, "checkpoints", kind)

    def _stage(self, path: str, name: str) -> str | None:
        """A link to ``path`` named ``name`` that outlives retention pruning (a copy where
        links fail), in a folder of its own."""
        with self._lock:
            self._staged += 1
            folder = os.path.join(self._save_dir, STAGING_DIR, str(self._staged))
        target = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            os.link(path, target)
        except OSError:
            try:
                shutil.copyfile(path, target)
            except OSError as exc:
                self._failed(f"staging checkpoint {path}", exc)
                return None
        return target

    def _upload_staged(self, staged: str, artifact_dir: str, kind: str) -> None:
        try:
            self._store_file(staged, artifact_dir, kind)
        finally:
            shutil.rmtree(os.path.dirname(staged), ignore_errors=True)

    # ------------------------------------------------------------------ worker
    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._worker is None or not self._worker.is_alive():
            return
        self._queue.put((fn, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                fn, args = item
                try:
                    fn(*args)
                except Exception as exc:
                    self._failed(getattr(fn, "__name__", "a store call"), exc)
            finally:
                self._queue.task_done()

    def _failed(self, what: str, exc: BaseException) -> None:
        self._failures += 1
        if self._failures == 1:
            self._warning(
                f"{type(self).__name__}: {what} failed ({type(exc).__name__}: {exc}); training goes on, "
                "later failures are counted and reported when the run ends"
            )

    @property
    def failures(self) -> int:
        """How many store calls failed so far."""
        return self._failures

    # ------------------------------------------------------------------ files
    def flush(self) -> None:
        """Wait until every queued record and upload reached the store."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Upload what is queued, end the run with its status and stop the worker."""
        if self._worker is None:
            if self._pending_config is None:
                return
            self.start()  # a run that logged nothing still records its config
        self._submit(self._finish_run)
        self._queue.put(_STOP)
        assert self._worker is not None
        self._worker.join()
        self._worker = None
        if self._failures > 1:
            self._warning(f"{type(self).__name__}: {self._failures} store calls failed in this run")
        self.run_id = None
        self._resume_from = None
        self._status = "FINISHED"
        super().close()

    def _finish_run(self) -> None:
        self._store_finish(self._status)

    # ------------------------------------------------------------------ messages
    def _info(self, message: str) -> None:
        if self._logger is not None:
            self._logger.info(message)

    def _warning(self, message: str) -> None:
        if self._logger is not None:
            self._logger.warning(message)
        else:
            print(message, file=sys.stderr)


def _tracking_backends(
    runner: Any, backend_cls: type[TrackingVisBackend]
) -> list[TrackingVisBackend]:
    visualizer = getattr(runner, "visualizer", None)
    backends = getattr(visualizer, "vis_backends", None) or []
    return [b for b in backends if isinstance(b, backend_cls)]


class TrackingHookPlugin:
    """The hook side of a tracking backend, for a plugin's ``torchkiln.plugins`` entry point.

    A tracker plugin's ``torchkiln.plugins`` entry point names one instance::

        # my_tracker/hook_plugin.py; entry point: my_tracking = "my_tracker.hook_plugin:hooks"
        hooks = TrackingHookPlugin(MyTrackerVisBackend)

    None of these mount points runs per iteration, and with no backend of its class
    configured each does nothing.

    :param backend_cls: the backend class (or a zero-argument function returning it, so the
        plugin module imports the tracker only when a run uses it).
    """

    def __init__(self, backend_cls: type | Callable[[], type]) -> None:
        self._backend_cls = backend_cls
        self._offered_iter: int | None = None

    def _backends(self, runner: Any) -> list[TrackingVisBackend]:
        visualizer = getattr(runner, "visualizer", None)
        if not getattr(visualizer, "vis_backends", None):
            return []
        cls = self._backend_cls
        if not isinstance(cls, type):
            cls = cls()
        return _tracking_backends(runner, cls)

    def before_run(self, runner: Any) -> None:
        """Connect each backend to the runner (checkpoint listener, logger)."""
        self._offered_iter = None
        for backend in self._backends(runner):
            backend.attach(runner)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Remember the tracking run a loaded checkpoint names."""
        backends = self._backends(runner)
        if not backends:
            return
        meta = checkpoint.get("meta") if isinstance(checkpoint, Mapping) else None
        if not isinstance(meta, Mapping):
            return
        saved = meta.get(META_KEY)
        saved = saved if isinstance(saved, Mapping) else {}
        self._offered_iter = int(meta.get("iter", 0) or 0)
        for backend in backends:
            backend.offer_resume(saved.get(backend.state_key))

    def before_train(self, runner: Any) -> None:
        """Open each run: reopen the checkpoint's run when training resumed from it.

        A checkpoint loaded for its weights only (``load_from``) leaves the iteration at 0,
        so the run is a new one.
        """
        resumed = bool(self._offered_iter) and getattr(runner, "iter", 0) == self._offered_iter
        for backend in self._backends(runner):
            backend.train_started(runner, resumed)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Store each backend's run id in the checkpoint's ``meta``."""
        backends = self._backends(runner)
        if not backends:
            return
        meta = checkpoint.setdefault("meta", {})
        tracking = meta.setdefault(META_KEY, {})
        for backend in backends:
            tracking[backend.state_key] = backend.checkpoint_state()

    def after_run(self, runner: Any) -> None:
        """Set the status each run ends with: KILLED on a stop signal, FAILED on an error."""
        backends = self._backends(runner)
        if not backends:
            return
        if getattr(runner, "stop_requested", False):
            status = "KILLED"
        elif sys.exc_info()[0] is not None:
            status = "FAILED"
        else:
            status = "FINISHED"
        for backend in backends:
            backend.set_status(status)
