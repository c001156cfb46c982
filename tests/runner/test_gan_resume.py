"""The two-optimizer GAN toy resumes exactly (no stale discriminator gradients)."""

from __future__ import annotations

from pathlib import Path

from torchkiln.runner.check_resume import main as check_resume

GAN = str(Path(__file__).resolve().parents[2] / "configs" / "gan_toy.yaml")


def test_gan_toy_check_resume_is_exact(tmp_path) -> None:
    assert check_resume(GAN, 4, [], str(tmp_path)) == 0
