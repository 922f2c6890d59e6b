"""The ``mlstudio`` command: log in, manage workspaces, list experiments and runs, make tokens,
submit remote runs and follow them, list compute targets and environments, look after
web services.

Exit codes (scripts can rely on them):

====  =====================================================================
0     success
1     any other failure (server error, failed job, unreachable server)
2     usage: bad arguments, no server URL, no config.json
3     authentication or permission: not logged in, token refused, role too low
4     not found: the workspace, experiment or run does not exist or is not visible
5     rejected: a bad name or value, or the object already exists
130   interrupted (Ctrl-C)
====  =====================================================================

``--output json`` prints machine-readable JSON on stdout; messages, prompts and progress
bars go to stderr, so stdout can be piped.

The commands live in :mod:`.login`, :mod:`.workspaces`, :mod:`.experiments`,
:mod:`.remote` and :mod:`.services`; what they share in :mod:`.common` and :mod:`.output`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlstudio._version import __version__
from mlstudio.cli import experiments, login, remote, services, workspaces
from mlstudio.cli.common import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    Parser,
    exit_code_for,
)
from mlstudio.cli.output import Output
from mlstudio.exceptions import MLStudioError

__all__ = [
    "EXIT_AUTH",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "Output",
    "build_parser",
    "exit_code_for",
    "main",
]

GLOBAL_DEFAULTS = {"server": None, "output": "table", "quiet": False}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mlstudio`` command."""
    # The global options are accepted before and after the subcommand. SUPPRESS keeps an
    # absent one from overwriting the other's value; main() fills in the defaults after.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=argparse.SUPPRESS, help="server URL")
    common.add_argument(
        "-o", "--output", choices=["table", "json"], default=argparse.SUPPRESS, help="format"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )

    ws_flags = argparse.ArgumentParser(add_help=False)
    ws_flags.add_argument("-w", "--workspace", help="workspace name (default: config.json)")
    ws_flags.add_argument("-g", "--resource-group", help="resource group of the workspace")
    ws_flags.add_argument("-s", "--subscription-id", help="subscription id of the workspace")

    parser = Parser(
        prog="mlstudio",
        description="ML Studio command line: workspaces, experiments, runs, tokens, remote "
        "runs, compute targets and environments.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 auth, 4 not found, 5 rejected.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mlstudio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    login.add_commands(commands, common)
    workspaces.add_commands(commands, common)
    run = experiments.add_commands(commands, common, ws_flags)
    remote.add_run_commands(run, common, ws_flags)
    remote.add_commands(commands, common, ws_flags)
    services.add_commands(commands, common, ws_flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; answer its exit code (the console script exits with it)."""
    out = Output("table", sys.stdout, sys.stderr)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version, or a usage error
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    out.format = args.output
    for flag in ("workspace", "resource_group", "subscription_id"):
        if not hasattr(args, flag):
            setattr(args, flag, None)
    try:
        return args.func(args, out)
    except MLStudioError as exc:
        out.message(f"mlstudio: error: {exc}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        out.message("mlstudio: interrupted")
        return EXIT_INTERRUPTED
