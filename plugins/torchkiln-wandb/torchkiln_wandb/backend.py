"""``WandbVisBackend``: scalars, the config and files logged into one Weights & Biases run.

Constructor arguments are MMEngine's (``save_dir, init_kwargs, define_metric_cfg, commit,
log_code_name, watch_kwargs``) plus ``log_checkpoints``. ``WANDB_MODE=offline`` (or
``init_kwargs: {mode: offline}``) keeps everything in local run files, synced later with
``wandb sync``.

Each record is one ``run.log({**scalars, "step": step})``; every metric is plotted against
``step`` (the training iteration, or the epoch for evaluation records logged by epoch) through
``define_metric("*", step_metric="step")``, so resumed runs and evaluation records never fight
over W&B's own ``_step``. A resumed training run calls ``wandb.init(id=<the checkpoint's run
id>, resume="allow")``; the steps each key already holds are read from the run's local files
(:mod:`torchkiln_wandb.offline`) of every earlier part, whose folders the checkpoint lists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.visualization.tracking import TrackingVisBackend, flatten_config

__all__ = ["WandbVisBackend"]

_WHERE = "visualizer.vis_backends (WandbVisBackend)"


class WandbVisBackend(TrackingVisBackend):
    """Log scalars, the config and (optionally) checkpoints into a W&B run.

    :param save_dir: the backend's folder (``<log_dir>/vis_data`` in a run); W&B writes its
        ``wandb/`` folder here unless ``init_kwargs`` names a ``dir``.
    :param init_kwargs: arguments of ``wandb.init`` (``project``, ``entity``, ``name``,
        ``tags``, ``mode``, ...); ``id`` and ``resume`` are set on resume.
    :param define_metric_cfg: ``{metric: summary}`` (``{"loss": "min"}``) or a list of
        ``wandb.define_metric`` keyword dicts.
    :param commit: passed to ``run.log`` (``False`` groups records into one row until the next
        commit).
    :param log_code_name: when given, the run logs the code in the working folder under this name.
    :param watch_kwargs: when given, ``wandb.watch(model, **watch_kwargs)`` at the start of training.
    :param log_checkpoints: ``none``, ``best``, ``last`` or ``all`` (see the base class);
        uploaded as versions of the artifact ``checkpoints-<run id>`` (type ``model``).
    """

    state_key = "wandb"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        init_kwargs: Mapping[str, Any] | None = None,
        define_metric_cfg: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
        commit: bool = True,
        log_code_name: str | None = None,
        watch_kwargs: Mapping[str, Any] | None = None,
        log_checkpoints: str = "none",
    ) -> None:
        super().__init__(save_dir, log_checkpoints=log_checkpoints)
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError(
                "WandbVisBackend needs the wandb client",
                where=_WHERE,
                hint="pip install wandb, or remove the backend",
            ) from None
        self.init_kwargs = dict(init_kwargs or {})
        for key in ("id", "resume"):
            if key in self.init_kwargs:
                raise ConfigError(
                    f"WandbVisBackend sets init_kwargs.{key} itself (from the checkpoint on resume)",
                    where=f"{_WHERE}.init_kwargs.{key}",
                    hint=f"remove {key}; `--resume` continues the run named in the checkpoint",
                )
        if define_metric_cfg is not None and not isinstance(
            define_metric_cfg, (Mapping, list, tuple)
        ):
            raise ConfigError(
                "WandbVisBackend define_metric_cfg must be a dict {metric: summary} or a list of dicts",
                where=f"{_WHERE}.define_metric_cfg",
            )
        self.define_metric_cfg = define_metric_cfg
        self.commit = commit
        self.log_code_name = log_code_name
        self.watch_kwargs = None if watch_kwargs is None else dict(watch_kwargs)
        self.wandb_dir = os.fspath(self.init_kwargs.get("dir") or save_dir)
        self._dirs: list[str] = []
        self._run: Any = None
        self._artifact_versions = 0
        self._check_dir()

    def _check_dir(self) -> None:
        """The W&B folder must be creatable and writable: say so at start-up, not mid-run."""
        try:
            os.makedirs(self.wandb_dir, exist_ok=True)
            probe = os.path.join(self.wandb_dir, f".write_test_{os.getpid()}")
            with open(probe, "w", encoding="utf-8") as fh:
                fh.write("")
            os.remove(probe)
        except OSError as exc:
            raise ConfigError(
                f"WandbVisBackend cannot write its run files to {self.wandb_dir!r}: {exc.strerror or exc}",
                where=f"{_WHERE}.init_kwargs.dir"
                if "dir" in self.init_kwargs
                else f"{_WHERE}.save_dir",
                hint="give a writable folder",
            ) from None

    @property
    def run(self) -> Any:
        """The ``wandb`` run object (None until the run is open)."""
        return self._run

    # ------------------------------------------------------------------ store
    def _on_attach(self, runner: Any) -> None:
        if "name" not in self.init_kwargs and getattr(runner, "experiment_name", None):
            self.init_kwargs["name"] = runner.experiment_name

    def _store_open(self, resume: Mapping[str, Any] | None) -> tuple[str, dict[str, int]]:
        import wandb

        kwargs: dict[str, Any] = {"reinit": "create_new", **self.init_kwargs, "dir": self.wandb_dir}
        last_steps: dict[str, int] = {}
        if resume is not None:
            run_id = str(resume["run_id"])
            self._dirs = [str(d) for d in resume.get("dirs", []) if isinstance(d, str)]
            last_steps = self._logged_steps(run_id, self._dirs)
            kwargs.update(id=run_id, resume="allow")
            kwargs.pop("name", None)  # the resumed run keeps its name
        self._run = wandb.init(**kwargs)
        if self.wandb_dir not in self._dirs:
            self._dirs.append(self.wandb_dir)
        self._run.define_metric("step")
        self._run.define_metric("*", step_metric="step")
        cfg = self.define_metric_cfg
        if isinstance(cfg, Mapping):
            for metric, summary in cfg.items():
                self._run.define_metric(metric, summary=summary, step_metric="step")
        elif cfg:
            for item in cfg:
                self._run.define_metric(**dict(item))
        return self._run.id, last_steps

    def _logged_steps(self, run_id: str, dirs: Sequence[str]) -> dict[str, int]:
        """The last ``step`` of each key in the run's local files of earlier parts."""
        from torchkiln_wandb.offline import offline_run_files, read_history

        last: dict[str, int] = {}
        for folder in dirs:
            for path in offline_run_files(folder, run_id):
                try:
                    rows = read_history(path)
                except (OSError, ValueError) as exc:
                    self._warning(
                        f"WandbVisBackend: cannot read {path} ({exc}); steps logged there may repeat"
                    )
                    continue
                for row in rows:
                    step = row.get("step")
                    if not isinstance(step, (int, float)):
                        continue
                    for key in row:
                        if not key.startswith("_") and key != "step":
                            last[key] = max(last.get(key, -1), int(step))
        return last

    def _state_extra(self) -> dict[str, Any]:
        return {"dirs": list(self._dirs)}

    def _on_train_start(self, runner: Any) -> None:
        if self.watch_kwargs is not None and self._run is not None:
            self._run.watch(runner.unwrapped_model, **self.watch_kwargs)

    def _store_metrics(self, values: Mapping[str, float], step: int) -> None:
        self._run.log({**values, "step": step}, commit=self.commit)

    def config_params(self, config: Mapping[str, Any]) -> dict[str, str]:
        """The config flattened (``optim_wrapper.optimizer.lr``)."""
        return flatten_config(config)

    def _store_params(self, params: Mapping[str, str], resumed: bool) -> None:
        self._run.config.update(dict(params), allow_val_change=True)
        if self.log_code_name:
            self._run.log_code(name=self.log_code_name)

    def _store_text(self, text: str, name: str) -> None:
        path = os.path.join(self._run.dir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        self._run.save(path, base_path=self._run.dir, policy="now")

    def _store_file(self, path: str, artifact_dir: str, kind: str) -> None:
        import wandb

        artifact = wandb.Artifact(
            f"checkpoints-{self._run.id}", type="model", metadata={"kind": kind}
        )
        artifact.add_file(path, name=os.path.basename(path))
        self._run.log_artifact(artifact, aliases=[kind])

    def _store_finish(self, status: str) -> None:
        self._run.finish(exit_code=0 if status == "FINISHED" else 1)
        self._run = None
