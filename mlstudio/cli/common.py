"""What the ``mlstudio`` commands share: exit codes, the parser class, and finding the
server, the client and the workspace a command is about."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from mlstudio._client.config import load_config
from mlstudio._client.http import SERVER_URL_ENV, HttpClient, normalize_server_url
from mlstudio.auth import DefaultAuthentication, load_credentials
from mlstudio.cli.output import Output
from mlstudio.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    NotFoundError,
    UserErrorException,
)
from mlstudio.workspace import Workspace

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_REJECTED = 5
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """The exit code that tells scripts what kind of failure `exc` is."""
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return EXIT_AUTH
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, UserErrorException):
        return EXIT_REJECTED
    return EXIT_ERROR


class Parser(argparse.ArgumentParser):
    """argparse's parser, its usage errors in one line on stderr (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        # argparse's own behaviour (usage + message, exit 2), kept in one line on stderr.
        self.exit(EXIT_USAGE, f"mlstudio: error: {message}\n")


def subcommands(
    commands: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    """Add the command `name` whose actions (``mlstudio name ACTION``) are added to the answer."""
    return commands.add_parser(name, help=help_text).add_subparsers(
        dest="action", required=True, parser_class=Parser
    )


def add_action(
    actions: argparse._SubParsersAction,
    name: str,
    help_text: str,
    func: Callable[[argparse.Namespace, Output], int],
    parents: list[argparse.ArgumentParser],
    *positionals: str,
) -> argparse.ArgumentParser:
    """Add the action `name` that runs `func`, with `positionals` (plain string arguments);
    answer its parser for the options."""
    parser = actions.add_parser(name, parents=parents, help=help_text)
    for positional in positionals:
        parser.add_argument(positional)
    parser.set_defaults(func=func)
    return parser


def server_url(args: argparse.Namespace, config: dict[str, Any] | None = None) -> str:
    """--server, else config.json's server_url (as from_config reads it), else
    $MLSTUDIO_SERVER_URL, else the server of the only stored login."""
    url = getattr(args, "server", None) or (config or {}).get("server_url")
    url = url or os.environ.get(SERVER_URL_ENV)
    if not url:
        servers = list(load_credentials())
        if len(servers) > 1:
            raise ConfigurationError(
                f"Logged in to {len(servers)} servers; choose one with --server or "
                f"${SERVER_URL_ENV}."
            )
        url = servers[0] if servers else None
    if not url:
        raise ConfigurationError(
            f"No server: pass --server URL, set ${SERVER_URL_ENV} or run `mlstudio login`."
        )
    return normalize_server_url(url)


def http_client(args: argparse.Namespace) -> HttpClient:
    """A client of the command's server with the default credential chain."""
    return HttpClient(server_url(args), DefaultAuthentication())


def workspace_of(args: argparse.Namespace) -> Workspace:
    """The workspace of -w/-g/-s, else the one config.json (searched like from_config) names."""
    if args.workspace:
        return Workspace.get(
            args.workspace, args.subscription_id, args.resource_group, server_url=server_url(args)
        )
    try:
        config = load_config()
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"No workspace: pass -w/--workspace (with -g and -s when the name is not unique) "
            f"or run in a folder with a config.json. ({exc})"
        ) from None
    return Workspace(
        config["subscription_id"],
        config["resource_group"],
        config["workspace_name"],
        server_url=server_url(args, config),
    )


def without_secret(token: dict[str, Any]) -> dict[str, Any]:
    """A token's record without the token itself."""
    return {k: v for k, v in token.items() if k != "token"}


def confirm_deletion(out: Output, what: str, name: str, yes: bool) -> None:
    """Unless `yes`, ask to type `name` on stdin to confirm deleting it.

    Raises:
        UserErrorException: what was typed is not the name.
    """
    if yes:
        return
    out.stderr.write(
        f"This deletes {what} {name!r} and everything in it. Type its name to confirm: "
    )
    out.stderr.flush()
    if sys.stdin.readline().strip() != name:
        raise UserErrorException("The name did not match; nothing was deleted.")
