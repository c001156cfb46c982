"""The hook table printed at run start."""

from __future__ import annotations

from torchkiln.hooks.hook import Hook
from torchkiln.plugin_host import HookHost, format_hook_table


class RuntimeInfo(Hook):
    priority = "VERY_HIGH"

    def before_run(self, runner):
        pass

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        pass


class IterTimer(Hook):
    priority = "NORMAL"

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        pass

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        pass


class Logger(Hook):
    priority = "BELOW_NORMAL"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        pass


def test_table_lists_mount_points_in_lifecycle_order_and_hooks_in_call_order():
    host = HookHost()
    host.register(Logger())
    host.register(IterTimer())
    host.register(RuntimeInfo())
    host.register(Logger(), priority=45, name="extra", dist="torchkiln-extra")
    pad = " " * (35 - len("RuntimeInfo"))
    assert format_hook_table(host) == (
        "before_run:\n"
        f"(VERY_HIGH   ) RuntimeInfo{pad}\n"
        "\n"
        "before_train_iter:\n"
        f"(VERY_HIGH   ) RuntimeInfo{pad}\n"
        f"(NORMAL      ) {'IterTimer':<35}\n"
        "\n"
        "after_train_iter:\n"
        "(45          ) extra (Logger)  [torchkiln-extra]\n"
        f"(NORMAL      ) {'IterTimer':<35}\n"
        f"(BELOW_NORMAL) {'Logger':<35}"
    )


def test_empty_host_gives_empty_table():
    host = HookHost()
    host.register(Hook())
    assert format_hook_table(host) == ""
