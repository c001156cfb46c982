"""The ``torchkiln`` command line: train, val, test, config show/validate, plugins, new-plugin, plot.

Exit codes: 0 ok, 1 internal error, 2 config or usage error, 3 plugin error, 4 ``check-resume``
found different weights, 130 interrupted (SIGINT), 143 terminated (SIGTERM, SIGUSR1).
A user error prints ``error: <message>`` (with where and a hint) and no traceback unless
``--debug``. ``--help``, ``config show``, ``plugins``, ``new-plugin`` and ``plot`` never import
torch; everything heavy is imported inside the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from torchkiln.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_CODE,
    TorchkilnError,
    UsageError,
    did_you_mean,
)

__all__ = ["build_parser", "main"]

PROG = "torchkiln"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        hint = f"see `{self.prog} --help`"
        choice = re.match(r"argument \S+: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = [o.strip().strip("'") for o in choice.group(2).split(",")]
            suggestion = did_you_mean(choice.group(1), options)
            if suggestion:
                hint = f"{suggestion} {hint}"
        if "required: CONFIG" in message:
            hint = "give the config file first: --cfg-options takes every word after it; " + hint
        raise UsageError(message, where=self.prog, hint=hint)


# ---------------------------------------------------------------------- arguments
def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", metavar="CONFIG", help="the config file (.yaml, .yml, .json, .toml or .py)"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config values: a.b=1 (existing key), +a.b=1 (new key), ~a.b (delete); "
        "values are YAML, e.g. param_scheduler.0.milestones=[8,11]",
    )


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks for errors"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``torchkiln`` command."""
    from torchkiln import __version__

    parser = _Parser(
        prog=PROG, description="torchkiln: a plugin-based training engine for PyTorch."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_debug(parser, False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def run_parser(name: str, help_text: str, checkpoint: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_config_args(sub)
        if checkpoint:
            sub.add_argument(
                "--checkpoint", required=True, metavar="CKPT", help="the checkpoint to evaluate"
            )
        sub.add_argument(
            "--work-dir",
            metavar="DIR",
            help="where logs and checkpoints go (default: config's work_dir)",
        )
        sub.add_argument(
            "--launcher",
            choices=["none", "pytorch", "slurm", "mpi"],
            help="how processes were started (default: the config's launcher)",
        )
        sub.add_argument(
            "--nproc",
            type=int,
            metavar="N",
            help="start N local worker processes through torch.distributed.run (torchrun)",
        )
        _add_debug(sub, argparse.SUPPRESS)
        return sub

    train = run_parser("train", "Train a model from a config.", checkpoint=False)
    train.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CKPT",
        help="resume from CKPT, or from the latest checkpoint in work_dir when CKPT is left out",
    )
    train.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper)")
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="build everything, run one train and one val iteration",
    )
    train.set_defaults(handler=_cmd_run)
    run_parser("val", "Evaluate a checkpoint on the validation set.", checkpoint=True).set_defaults(
        handler=_cmd_run
    )
    run_parser("test", "Evaluate a checkpoint on the test set.", checkpoint=True).set_defaults(
        handler=_cmd_run
    )

    config = commands.add_parser(
        "config", help="Show or validate a config.", description="Show or validate a config."
    )
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_commands.required = True
    show = config_commands.add_parser(
        "show",
        help="Print the final config as YAML.",
        description="Print the config after _base_ merging, interpolation and overrides, as YAML.",
    )
    _add_config_args(show)
    show.add_argument(
        "--provenance",
        action="store_true",
        help="annotate each value with the file:line that set it",
    )
    _add_debug(show, argparse.SUPPRESS)
    show.set_defaults(handler=_cmd_config_show)
    check = config_commands.add_parser(
        "validate",
        help="Check a config; print every error.",
        description="Check keys, types and component arguments; exit 0 when valid, 2 with every error otherwise.",
    )
    _add_config_args(check)
    _add_debug(check, argparse.SUPPRESS)
    check.set_defaults(handler=_cmd_config_validate)
    _add_debug(config, argparse.SUPPRESS)

    plugins = commands.add_parser(
        "plugins",
        help="List installed plugins and components.",
        description="List installed plugin distributions, their components, hook plugins and config packages.",
    )
    plugins.add_argument("--json", action="store_true", help="print the listing as JSON")
    _add_debug(plugins, argparse.SUPPRESS)
    plugins.set_defaults(handler=_cmd_plugins)

    new_plugin = commands.add_parser(
        "new-plugin",
        help="Create a plugin distribution that passes its own tests.",
        description="Write a plugin distribution (a model, a metric, a hook, a hook plugin, a config "
        "folder, a test using torchkiln.testing, a README) into a new folder.",
    )
    new_plugin.add_argument(
        "name", metavar="NAME", help="the distribution name, e.g. torchkiln-foo"
    )
    new_plugin.add_argument("--dir", metavar="DIR", help="the folder to create (default: ./NAME)")
    _add_debug(new_plugin, argparse.SUPPRESS)
    new_plugin.set_defaults(handler=_cmd_new_plugin)

    plot = commands.add_parser(
        "plot",
        help="Draw training curves from a run's scalars.jsonl.",
        description="Draw one subplot per key against the training step, from the scalars.jsonl of "
        "WORK_DIR's latest run folder (or of the run folder or file given).",
    )
    plot.add_argument(
        "work_dir",
        metavar="WORK_DIR",
        help="a work_dir, a run folder work_dir/<timestamp> or a scalars.jsonl",
    )
    plot.add_argument(
        "--keys",
        metavar="K1,K2",
        help="comma-separated keys, e.g. loss,lr,accuracy/top1 "
        "(a mode prefix picks one mode: val/time); default: every key but the timings",
    )
    plot.add_argument(
        "--out", metavar="FILE", help="the image to write (default: curves.png in the run folder)"
    )
    _add_debug(plot, argparse.SUPPRESS)
    plot.set_defaults(handler=_cmd_plot)

    check_resume = commands.add_parser(
        "check-resume",
        help="Check that resuming a config is exact (bit-identical weights).",
        description="Train N+N iterations straight; then N, a stop checkpoint, a fresh runner resuming from it "
        "and N more; compare the final weights. Exit 0 when they are bit-identical, 4 when they differ.",
    )
    _add_config_args(check_resume)
    check_resume.add_argument(
        "--iters",
        type=int,
        default=20,
        metavar="N",
        help="iterations before the interruption, and after it (default: 20)",
    )
    check_resume.add_argument(
        "--work-dir",
        metavar="DIR",
        help="keep the runs' folders here (default: a temporary folder)",
    )
    _add_debug(check_resume, argparse.SUPPRESS)
    check_resume.set_defaults(handler=_cmd_check_resume)
    return parser


# ---------------------------------------------------------------------- commands
def _cmd_config_show(args: argparse.Namespace) -> int:
    from torchkiln.config.loader import load

    cfg = load(args.config, args.cfg_options)
    if args.provenance:
        from torchkiln.config.provenance import annotate

        text = annotate(cfg.to_dict(), cfg.provenance)
    else:
        text = cfg.dump()
    sys.stdout.write(text)
    return EXIT_OK


def _validated(args: argparse.Namespace, command: str | None = None) -> tuple[Any, Any]:
    """Load ``args.config`` (with the run flags of ``command`` folded in) and validate it in
    one pass; print warnings; raise all errors together. Returns the config and its typed form.
    """
    from torchkiln.config.loader import load
    from torchkiln.config.report import ConfigWarning
    from torchkiln.config.validation import check

    cfg = load(args.config, args.cfg_options)
    if command is not None:
        from torchkiln.config.run_flags import apply_run_flags

        cfg = apply_run_flags(cfg, args, command)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        try:
            run_config = check(cfg)
        finally:
            for w in caught:
                if issubclass(w.category, ConfigWarning):
                    print(f"warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return cfg, run_config


def _cmd_config_validate(args: argparse.Namespace) -> int:
    _validated(args)
    print("ok")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    cfg, run_config = _validated(args, args.command)
    nproc = getattr(args, "nproc", None)
    if nproc is not None:
        from torchkiln.dist.torchrun import in_launched_process, launch_local

        if nproc < 1:
            raise UsageError(f"--nproc must be at least 1, got {nproc}", where="--nproc")
        if nproc > 1 and not in_launched_process():
            if args.launcher not in (None, "none", "pytorch"):
                raise UsageError(
                    f"--nproc starts workers through torchrun; it cannot be used with --launcher {args.launcher}",
                    where="--launcher",
                    hint="drop --launcher, or drop --nproc and start the job with your launcher",
                )
            return launch_local(nproc, getattr(args, "argv", None) or sys.argv[1:])
    from torchkiln.runner import entry

    handler = getattr(entry, args.command)
    return int(handler(cfg, args, run_config) or 0)


def _cmd_check_resume(args: argparse.Namespace) -> int:
    from torchkiln.runner.check_resume import main as check_resume

    return check_resume(args.config, args.iters, args.cfg_options, args.work_dir)


def _cmd_plot(args: argparse.Namespace) -> int:
    from torchkiln.visualization.plot import plot_scalars

    out = plot_scalars(args.work_dir, keys=args.keys, out=args.out)
    print(out)
    return EXIT_OK


def _cmd_plugins(args: argparse.Namespace) -> int:
    report = plugin_report()
    if args.json:
        from torchkiln.plugin_listing import report_json

        sys.stdout.write(report_json(report))
    elif sys.stdout.isatty():
        _print_plugins_rich(report)
    else:
        sys.stdout.write(format_plugins(report))
    return EXIT_OK


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from torchkiln.scaffold import scaffold_plugin

    target = scaffold_plugin(args.name, args.dir)
    print(
        f"wrote {args.name} in {target}; try it: pip install -e {target} && cd {target} && pytest"
    )
    return EXIT_OK


# ---------------------------------------------------------------------- plugins listing
def plugin_report() -> dict[str, Any]:
    """What is installed, read from entry points and built-in tables without importing components.

    ``{"builtin": {registry: count}, "distributions": [{"name", "version", "components":
    {registry: [names]}, "hook_plugins": [names], "configs": [(name, package)], "other":
    {group: [names]}}]}``
    """
    from torchkiln.plugin_listing import add_details
    from torchkiln.registry import ALL_REGISTRIES, _index

    by_group = {r.entry_point_group: r.name for r in ALL_REGISTRIES.values()}
    # built-in tables are keyed by the registry's constant name (MODELS, VISBACKENDS, ...)
    by_constant = {name.replace("_", "").upper(): name for name in ALL_REGISTRIES}
    builtin: dict[str, int] = {}
    for constant, table in _index._builtin_components().items():
        name = by_constant.get(constant.replace("_", "").upper(), constant.lower())
        builtin[name] = builtin.get(name, 0) + len(table)

    dists: dict[str, dict[str, Any]] = {}
    hook_values: dict[tuple[str, str], str] = {}
    for group, eps in _index.entry_points_by_group().items():
        for ep in eps:
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else "unknown"
            if _index.normalise_dist(dist_name) == _index.BUILTIN_SCOPE:
                continue
            entry = dists.setdefault(
                dist_name,
                {
                    "name": dist_name,
                    "version": dist.version if dist is not None else "?",
                    "components": {},
                    "hook_plugins": [],
                    "configs": [],
                    "other": {},
                },
            )
            if group == "torchkiln.plugins":
                entry["hook_plugins"].append(ep.name)
                hook_values[(dist_name, ep.name)] = ep.value
            elif group == "torchkiln.configs":
                entry["configs"].append((ep.name, ep.value))
            elif group in by_group:
                entry["components"].setdefault(by_group[group], []).append(ep.name)
            else:
                entry["other"].setdefault(group, []).append(ep.name)
    for entry in dists.values():
        for names in (
            *entry["components"].values(),
            *entry["other"].values(),
            entry["hook_plugins"],
        ):
            names.sort()
        entry["configs"].sort()
    report = {
        "builtin": dict(sorted(builtin.items())),
        "distributions": [dists[k] for k in sorted(dists, key=str.lower)],
    }
    return add_details(report, hook_values)


def _dist_lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    from torchkiln.plugin_listing import hook_plugin_label

    rows = [(registry, ", ".join(names)) for registry, names in sorted(entry["components"].items())]
    if entry["hook_plugins"]:
        rows.append(
            ("hook plugins", "; ".join(hook_plugin_label(entry, n) for n in entry["hook_plugins"]))
        )
    if entry["configs"]:
        rows.append(("config packages", ", ".join(f"{n} ({v})" for n, v in entry["configs"])))
    for group, names in sorted(entry["other"].items()):
        rows.append((f"{group} (unknown group)", ", ".join(names)))
    return rows


def format_plugins(report: dict[str, Any]) -> str:
    """The plugin report as plain text."""
    from torchkiln import __version__

    lines = [f"{PROG} {__version__}", "", "built-in components:"]
    builtin = dict(report["builtin"])
    width = max((len(k) for k in (*builtin, "optimizers")), default=0)
    for name, count in builtin.items():
        lines.append(f"  {name.ljust(width)}  {count}")
    lines.append(f"  {'optimizers'.ljust(width)}  + every torch.optim optimizer")
    lines.append("")
    if not report["distributions"]:
        lines.append("plugin distributions: none installed")
    else:
        lines.append("plugin distributions:")
        for entry in report["distributions"]:
            lines.append(f"  {entry['name']} {entry['version']}")
            for label, value in _dist_lines(entry):
                lines.append(f"    {label}: {value}")
    from torchkiln.plugin_listing import clash_lines

    lines.extend(clash_lines(report))
    return "\n".join(lines) + "\n"


def _print_plugins_rich(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from torchkiln import __version__

    console = Console()
    builtin = Table(title=f"{PROG} {__version__}: built-in components")
    builtin.add_column("registry")
    builtin.add_column("components", justify="right")
    for name, count in report["builtin"].items():
        builtin.add_row(name, str(count))
    builtin.add_row("optimizers", "+ torch.optim")
    console.print(builtin)
    dists = Table(title="plugin distributions")
    for column in ("distribution", "version", "provides", "names"):
        dists.add_column(column)
    for entry in report["distributions"]:
        rows = _dist_lines(entry) or [("", "")]
        for i, (label, value) in enumerate(rows):
            dists.add_row(
                entry["name"] if i == 0 else "", entry["version"] if i == 0 else "", label, value
            )
    if not report["distributions"]:
        dists.add_row("none installed", "", "", "")
    console.print(dists)
    if report.get("clashes"):
        clashes = Table(title="clashes (pick one provider with scope::Name)")
        for column in ("group", "name", "distributions"):
            clashes.add_column(column)
        for clash in report["clashes"]:
            clashes.add_row(clash["group"], clash["name"], ", ".join(clash["distributions"]))
        console.print(clashes)


# ---------------------------------------------------------------------- main
def _print_error(exc: TorchkilnError) -> None:
    errors = getattr(exc, "errors", None)
    if errors:
        for err in errors:
            print(f"error: {err}", file=sys.stderr)
        print(f"{len(errors)} error{'s' if len(errors) != 1 else ''} found", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)


def _report_to_launcher(exc: BaseException, exit_code: int) -> None:
    """Under torchrun, hand the error to its failure summary (the worker's error file)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torchkiln.dist.torchrun import record_worker_error

        record_worker_error(exc, exit_code)


def _peer_loss_exit(exc: BaseException, debug: bool) -> int | None:
    """When ``exc`` is a collective failing because another rank left, say so in one line
    (not as an error of this rank) and return the exit code; else None."""
    if "torch.distributed" not in sys.modules:  # no process group was ever used
        return None
    from torchkiln.dist.failures import describe_peer_loss, is_peer_loss

    if not is_peer_loss(exc):
        return None
    if debug:
        traceback.print_exc()
    rank = os.environ.get("RANK", "")
    print(describe_peer_loss(exc, int(rank) if rank.isdigit() else None), file=sys.stderr)
    _report_to_launcher(exc, EXIT_INTERNAL)
    return EXIT_INTERNAL


def _config_file(path: str) -> str:
    """``path`` itself, or for ``pkg::file.yaml`` that file in an installed config package.

    A real file whose name contains ``::`` wins over the package reading.
    """
    pkg, sep, inner = path.partition("::")
    if not sep or os.path.exists(path) or not pkg or os.sep in pkg:
        return path
    from torchkiln.config.packages import resolve_package

    return os.path.join(resolve_package(pkg), inner)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``torchkiln`` command line and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TORCHKILN_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version exit through argparse
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_OK
        debug = debug or bool(getattr(args, "debug", False))
        args.argv = argv
        if isinstance(getattr(args, "config", None), str):
            args.config = _config_file(args.config)
        return int(args.handler(args))
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TorchkilnError as exc:
        lost = _peer_loss_exit(exc, debug)
        if lost is not None:
            return lost
        if debug:
            traceback.print_exc()
        _print_error(exc)
        _report_to_launcher(exc, int(exc.exit_code))
        return int(exc.exit_code)
    except BrokenPipeError:
        # stdout closed early (e.g. `torchkiln config show cfg.yaml | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        from torchkiln.error_origin import find_user_frame, format_user_error

        lost = _peer_loss_exit(exc, debug)
        if lost is not None:
            return lost
        frame = find_user_frame(exc)
        if frame is not None:
            _report_to_launcher(exc, EXIT_USER_CODE)
            if debug:
                traceback.print_exc()
            print(format_user_error(exc, frame), file=sys.stderr)
            return EXIT_USER_CODE
        _report_to_launcher(exc, EXIT_INTERNAL)
        traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
