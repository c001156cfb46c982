"""DataLoader workers end with their phase, so the process exits (workers ignore SIGTERM)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

USER_MODULE = '''
import torch
from torchkiln.registry import DATASETS


@DATASETS.register_module()
class Numbers(torch.utils.data.Dataset):
    def __init__(self, fail_at=-1):
        self.fail_at = fail_at

    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == self.fail_at:
            raise FileNotFoundError(f"no sample {index}")
        return {"inputs": torch.ones(4) * index, "labels": torch.tensor(index % 3)}
'''

SCRIPT = '''
import sys
from torchkiln.cli import main
sys.exit(main(["train", sys.argv[1]]))
'''


def _run(tmp_path, fail_at, persistent):
    (tmp_path / "tk_worker_data.py").write_text(textwrap.dedent(USER_MODULE))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(textwrap.dedent(f"""
        custom_imports: {{imports: [tk_worker_data]}}
        model: {{type: kiln_toys.ToyModel}}
        work_dir: {tmp_path / 'work'}
        train_dataloader:
          batch_size: 2
          num_workers: 1
          persistent_workers: {str(persistent).lower()}
          dataset: {{type: Numbers, fail_at: {fail_at}}}
          sampler: {{type: DefaultSampler, shuffle: false}}
          collate_fn: {{type: default_collate}}
        train_cfg: {{by_epoch: true, max_epochs: 2}}
        optim_wrapper: {{optimizer: {{type: SGD, lr: 0.1}}}}
        default_hooks: {{checkpoint: null, progress_bar: null}}
    """))
    support = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_support")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), support, os.environ.get("PYTHONPATH", "")]),
               TORCHKILN_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    # A worker left alive would make the interpreter wait for it forever at exit.
    return subprocess.run([sys.executable, "-c", SCRIPT, str(cfg)], env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.parametrize(("fail_at", "persistent", "code"), [(3, False, 5), (-1, True, 0)])
def test_the_process_exits_after_an_error_or_with_persistent_workers(tmp_path, fail_at, persistent, code):
    out = _run(tmp_path, fail_at, persistent)
    assert out.returncode == code, out.stderr[-2000:]
