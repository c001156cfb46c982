"""What a registry tree holds, for reports (MMEngine's ``traverse_registry_tree`` and
``count_registered_modules``)."""

from __future__ import annotations

import json
import os
from typing import Any

from torchkiln.registry.registry import Registry

__all__ = ["count_registered_modules", "traverse_registry_tree"]


def traverse_registry_tree(registry: Registry, verbose: bool = True) -> list[dict[str, Any]]:
    """One record per registry of ``registry``'s tree, root first, depth first.

    Each record has ``name``, ``scope``, ``num_modules`` (components imported so far) and
    ``names`` (every name the registry itself offers, imported or not). The result is the
    same from any node of the tree.
    """
    records: list[dict[str, Any]] = []
    stack = [registry.root]
    while stack:
        node = stack.pop()
        records.append(
            {
                "name": node.name,
                "scope": node.scope,
                "num_modules": len(node.module_dict),
                "names": node.names(),
            }
        )
        stack.extend(reversed(list(node.children.values())))
    if verbose:
        for record in records:
            print(f"{record['scope']}::{record['name']}: {len(record['names'])} names")
    return records


def count_registered_modules(
    save_path: str | os.PathLike[str] | None = None, verbose: bool = True
) -> dict[str, Any]:
    """Records of every root registry's tree, keyed by the root's constant name (``MODELS``);
    written to ``<save_path>/modules_statistic_results.json`` when ``save_path`` is given."""
    from torchkiln.registry.root import REGISTRY_CONSTANTS

    results = {
        "registries": {
            constant: traverse_registry_tree(registry, verbose=verbose)
            for constant, registry in REGISTRY_CONSTANTS.items()
        }
    }
    if save_path is not None:
        with open(os.path.join(save_path, "modules_statistic_results.json"), "w") as out:
            json.dump(results, out, indent=2)
    return results
