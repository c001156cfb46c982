"""The hook table printed at run start: per mount point, the hooks in call order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host.priority import priority_label

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host.host import HookHost

__all__ = ["format_hook_table"]


def format_hook_table(host: HookHost) -> str:
    """Each mount point that has implementations, then ``(PRIORITY    ) Name`` per hook.

    Names are padded to 35 characters, as in MMEngine's table. Plugins from a distribution
    show it in brackets after the name. Mount points without hooks are left
    out; an empty host gives ``''``.
    """
    sections = []
    for mount_point in MOUNT_POINTS:
        records = host.call_order(mount_point)
        if not records:
            continue
        lines = [f"{mount_point}:"]
        for record in records:
            line = f"({priority_label(record.priority):<12}) {record.label:<35}"
            if record.dist:
                line = f"{line.rstrip()}  [{record.dist}]"
            lines.append(line)
        sections.append("\n".join(lines))
    return "\n\n".join(sections)
