"""``MLflowVisBackend``: scalars, the config and files logged into one MLflow run.

Constructor arguments are MMEngine's (so ``visualizer.vis_backends`` entries of an MMEngine
config work unchanged), plus ``log_checkpoints``. Every store call goes through
:class:`mlflow.tracking.MlflowClient` with an explicit run id (no global "active run"),
on the backend's worker thread (see :mod:`torchkiln.visualization.tracking`).

The tracking URI is, in order: ``tracking_uri``, the ``MLFLOW_TRACKING_URI`` environment
variable, ``file:<work_dir>/mlruns`` (one store per work dir, so a resumed run finds its
run). A ``file:`` URI opts into MLflow's file store (MLflow 3 refuses it unless
``MLFLOW_ALLOW_FILE_STORE`` is set; the backend sets it for the process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.visualization.tracking import STAGING_DIR, TrackingVisBackend, flatten_config

__all__ = ["MLflowVisBackend"]

_WHERE = "visualizer.vis_backends (MLflowVisBackend)"


def _is_file_uri(uri: str) -> bool:
    return (
        uri.startswith("file:")
        or "://" not in uri
        and not uri.startswith(("sqlite:", "databricks", "http"))
    )


class MLflowVisBackend(TrackingVisBackend):
    """Log scalars, the config and (optionally) checkpoints into an MLflow run.

    :param save_dir: the backend's folder (``<log_dir>/vis_data`` in a run).
    :param exp_name: the MLflow experiment (created if missing); default ``Default``.
    :param run_name: the run's name; default the runner's experiment name.
    :param tags: tags set on the run.
    :param params: params logged beside the config's.
    :param tracking_uri: the store (``file:/path``, ``sqlite:///path.db``, ``http://host``).
    :param artifact_suffix: files of the run's log folder with these endings are uploaded
        under ``logs/`` when the run ends.
    :param tracked_config_keys: log only these config keys (or dotted prefixes) as params.
    :param artifact_location: the artifact root of a newly created experiment.
    :param log_checkpoints: ``none``, ``best``, ``last`` or ``all`` (see the base class).
    """

    state_key = "mlflow"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        exp_name: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tracking_uri: str | None = None,
        artifact_suffix: Sequence[str] | str = (".json", ".log", ".py", "yaml"),
        tracked_config_keys: Sequence[str] | None = None,
        artifact_location: str | None = None,
        log_checkpoints: str = "none",
    ) -> None:
        super().__init__(save_dir, log_checkpoints=log_checkpoints)
        self.exp_name = exp_name or "Default"
        self.run_name = run_name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.params = dict(params or {})
        self.artifact_suffix = (
            (artifact_suffix,) if isinstance(artifact_suffix, str) else tuple(artifact_suffix)
        )
        self.tracked_config_keys = (
            None if tracked_config_keys is None else list(tracked_config_keys)
        )
        self.artifact_location = artifact_location
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self._client: Any = None
        self._experiment_id: str | None = None
        self._log_dir: str | None = None
        if self.tracking_uri is not None:
            self._connect(self.tracking_uri, where=f"{_WHERE}.tracking_uri")

    # ------------------------------------------------------------------ store
    def _connect(self, uri: str, where: str) -> None:
        """Open the store and find or create the experiment; a failure is a config error."""
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(
                "MLflowVisBackend needs the mlflow client",
                where=_WHERE,
                hint="pip install mlflow-skinny (or mlflow), or remove the backend",
            ) from None
        if _is_file_uri(uri):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(self.exp_name)
            if experiment is None:
                experiment_id = client.create_experiment(
                    self.exp_name, artifact_location=self.artifact_location
                )
            else:
                experiment_id = experiment.experiment_id
        except Exception as exc:  # noqa: BLE001 - every store failure is reported the same way
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"MLflowVisBackend cannot use the tracking store {uri!r}: {detail}",
                where=where,
                hint="give a writable file:/path or sqlite:///path.db store, or a reachable server URI",
            ) from None
        self.tracking_uri = uri
        self._client = client
        self._experiment_id = experiment_id

    def _on_attach(self, runner: Any) -> None:
        self._log_dir = getattr(runner, "log_dir", None)
        if self.run_name is None:
            self.run_name = getattr(runner, "experiment_name", None)
        if self._client is None:
            work_dir = getattr(runner, "work_dir", None) or self._save_dir
            uri = "file:" + os.path.join(os.path.abspath(work_dir), "mlruns")
            self._connect(uri, where=f"{_WHERE}.tracking_uri (default: <work_dir>/mlruns)")

    @property
    def client(self) -> Any:
        """The :class:`~mlflow.tracking.MlflowClient` in use (connected on first use)."""
        if self._client is None:
            self._connect(
                "file:" + os.path.join(os.path.abspath(self._save_dir), "mlruns"),
                where=f"{_WHERE}.tracking_uri",
            )
        return self._client

    def _store_open(self, resume: Mapping[str, Any] | None) -> tuple[str, dict[str, int]]:
        client = self.client
        if resume is not None:
            run_id = str(resume["run_id"])
            try:
                run = client.get_run(run_id)
            except Exception as exc:  # noqa: BLE001 - a lost run: start a new one, say so
                self._warning(
                    f"MLflowVisBackend: the checkpoint's run {run_id} is not in {self.tracking_uri} "
                    f"({type(exc).__name__}); starting a new run"
                )
            else:
                client.update_run(run_id, status="RUNNING")
                last_steps = {}
                for key in run.data.metrics:
                    history = client.get_metric_history(run_id, key)
                    if history:
                        last_steps[key] = max(int(m.step) for m in history)
                return run_id, last_steps
        tags = {"torchkiln.log_dir": str(self._log_dir or self._save_dir), **self.tags}
        run = client.create_run(self._experiment_id, run_name=self.run_name, tags=tags)
        return run.info.run_id, {}

    def _store_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, step) for key, value in values.items()]
        for i in range(0, len(metrics), 1000):
            self._client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def config_params(self, config: Mapping[str, Any]) -> dict[str, str]:
        """The config flattened, limited to ``tracked_config_keys``, within MLflow's limits."""
        from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH

        merged = {**dict(config), **self.params}
        return flatten_config(
            merged, self.tracked_config_keys, MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH
        )

    def _store_params(self, params: Mapping[str, str], resumed: bool) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

        todo = dict(params)
        if resumed:  # a run's params cannot change: log the new ones, report the changed ones
            logged = self._client.get_run(self.run_id).data.params
            changed = sorted(k for k, v in todo.items() if k in logged and logged[k] != v)
            if changed:
                self._warning(
                    f"MLflowVisBackend: the resumed config changes params the run already holds "
                    f"(kept as logged): {', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}"
                )
            todo = {k: v for k, v in todo.items() if k not in logged}
        items = [Param(k, v) for k, v in todo.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    def _store_text(self, text: str, name: str) -> None:
        self._client.log_text(self.run_id, text, name)

    def _store_file(self, path: str, artifact_dir: str, kind: str) -> None:
        self._client.log_artifact(self.run_id, path, artifact_path=artifact_dir)

    def _store_finish(self, status: str) -> None:
        if self._log_dir and self.artifact_suffix:
            self._upload_logs(self._log_dir)
        self._client.set_terminated(self.run_id, status=status)

    def _upload_logs(self, log_dir: str) -> None:
        """The run's log files with ``artifact_suffix`` endings, under ``logs/<timestamp>/``."""
        base = os.path.join("logs", os.path.basename(log_dir.rstrip(os.sep)))
        for folder, dirs, files in os.walk(log_dir):
            dirs[:] = [d for d in dirs if d not in (STAGING_DIR, "mlruns")]
            for name in sorted(files):
                if name.endswith(self.artifact_suffix):
                    rel = os.path.relpath(folder, log_dir)
                    target = base if rel == "." else os.path.join(base, rel)
                    self._client.log_artifact(
                        self.run_id, os.path.join(folder, name), artifact_path=target
                    )
