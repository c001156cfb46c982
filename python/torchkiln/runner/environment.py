"""Process environment for a run: seeds, determinism, cuDNN, multiprocessing, distribution."""

from __future__ import annotations

import os
import random
from typing import Any

from torchkiln.errors import ConfigError

__all__ = [
    "RunEnvironment",
    "capture_rng_state",
    "restore_rng_state",
    "set_random_seed",
    "setup_env",
    "use_deterministic_algorithms",
]


def set_random_seed(
    seed: int | None = None, deterministic: bool = False, diff_rank_seed: bool = False
) -> int:
    """Seed python, numpy and torch (CPU and CUDA); return the seed used.

    :param seed: the seed; ``None`` picks one on rank 0 and shares it with every rank.
    :param deterministic: use deterministic algorithms (``torch.use_deterministic_algorithms``).
    :param diff_rank_seed: add the rank to the seed so each process draws differently.
    """
    import numpy as np
    import torch

    from torchkiln.dist import get_rank, sync_random_seed

    if seed is None:
        seed = sync_random_seed()
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(
            f"randomness.seed must be an int or null, got {seed!r}", where="randomness.seed"
        )
    if diff_rank_seed:
        seed = seed + get_rank()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        use_deterministic_algorithms()
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def use_deterministic_algorithms(compiling: bool = False) -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)``, without its import cost.

    The public function also sets TorchInductor's ``deterministic`` option and so imports
    ``torch._inductor`` (seconds at start-up). That option only matters for
    ``torch.compile``: it is set when inductor is already loaded or ``compiling`` is true
    (the runner calls this again before compiling); otherwise only the eager flag is set.
    """
    import sys

    import torch

    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compiling or set_flag is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        set_flag(True, warn_only=True)


def setup_env(env_cfg: dict[str, Any] | None) -> None:
    """Apply ``env_cfg``: ``cudnn_benchmark`` and ``mp_cfg`` (start method, OpenCV threads)."""
    import torch

    env_cfg = env_cfg or {}
    if env_cfg.get("cudnn_benchmark"):
        torch.backends.cudnn.benchmark = True
    mp_cfg = env_cfg.get("mp_cfg") or {}
    method = mp_cfg.get("mp_start_method")
    if method:
        import multiprocessing as mp

        current = mp.get_start_method(allow_none=True)
        if current != method:
            try:
                mp.set_start_method(method, force=True)
            except ValueError as exc:
                raise ConfigError(
                    f"env_cfg.mp_cfg.mp_start_method: {exc}",
                    where="env_cfg.mp_cfg.mp_start_method",
                    hint="use one of fork, spawn, forkserver",
                ) from None
    threads = mp_cfg.get("opencv_num_threads")
    if threads is not None:
        try:
            import cv2

            cv2.setNumThreads(int(threads))
        except ImportError:
            pass
    if "OMP_NUM_THREADS" not in os.environ and env_cfg.get("omp_num_threads"):
        torch.set_num_threads(int(env_cfg["omp_num_threads"]))


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU, CUDA) RNG states, in a form ``weights_only`` loads."""
    import numpy as np
    import torch

    np_state: Any = np.random.get_state()  # the legacy tuple form
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`capture_rng_state`."""
    import numpy as np
    import torch

    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    if "numpy" in state:
        npst = state["numpy"]
        np.random.set_state(
            (
                npst["kind"],
                npst["keys"].numpy().astype(np.uint32),
                npst["pos"],
                npst["has_gauss"],
                npst["cached_gaussian"],
            )
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunEnvironment:
    """A run's process environment: distribution (``launcher``), ``env_cfg`` and randomness.

    Built first by the Runner, before anything random is: it joins or starts the process
    group, applies ``env_cfg`` (multiprocessing start method, thread counts, cudnn) and seeds
    every generator.

    :param launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi`` (checked by the config schema).
    :param env_cfg: ``{dist_cfg, mp_cfg, cudnn_benchmark}``.
    :param randomness: ``{seed, deterministic, diff_rank_seed}``.
    """

    def __init__(
        self, launcher: str, env_cfg: dict[str, Any] | None, randomness: dict[str, Any] | None
    ) -> None:
        from torchkiln.dist import get_dist_info, init_dist, is_distributed

        self.launcher = launcher or "none"
        env_cfg = env_cfg or {}
        if self.launcher != "none" and not is_distributed():
            init_dist(self.launcher, **dict(env_cfg.get("dist_cfg") or {}))
        elif (
            self.launcher == "none"
            and not is_distributed()
            and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        ):
            import warnings

            warnings.warn(
                f"this process was started by a launcher (WORLD_SIZE={os.environ['WORLD_SIZE']}) but launcher is "
                "'none': every process trains alone on the whole dataset; pass --launcher pytorch (torchrun), "
                "slurm or mpi to train together",
                stacklevel=4,
            )
        self.rank, self.world_size = get_dist_info()
        self.distributed = self.world_size > 1 or is_distributed()
        setup_env(env_cfg)
        randomness = randomness or {}
        self.deterministic = bool(randomness.get("deterministic", False))
        self.diff_rank_seed = bool(randomness.get("diff_rank_seed", False))
        self.seed = set_random_seed(randomness.get("seed"), self.deterministic, self.diff_rank_seed)

    def device(self) -> Any:
        """The device this process trains on: its local GPU, else the CPU."""
        import torch

        if torch.cuda.is_available():
            from torchkiln.dist import get_local_rank

            return torch.device(
                "cuda", get_local_rank() if self.distributed else torch.cuda.current_device()
            )
        return torch.device("cpu")
