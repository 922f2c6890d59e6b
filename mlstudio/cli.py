"""The ``mlstudio`` command: log in, manage workspaces, list experiments and runs, make tokens.

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
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TextIO

from mlstudio import __version__
from mlstudio._config import load_config
from mlstudio._http import SERVER_URL_ENV, HttpClient, normalize_server_url
from mlstudio.auth import (
    TokenAuthentication,
    forget_login,
    load_credentials,
    save_login,
    stored_login,
)
from mlstudio.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    MLStudioError,
    NotFoundError,
    UserErrorException,
)
from mlstudio.experiment import Experiment
from mlstudio.run import Run, status_name
from mlstudio.scopes import ResourceGroup
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


class Output:
    """Where a command writes: data on stdout (JSON or a table), messages on stderr."""

    def __init__(self, fmt: str, stdout: TextIO, stderr: TextIO) -> None:
        self.format = fmt
        self.stdout = stdout
        self.stderr = stderr

    def json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    def table(self, rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
        cells = [[("" if c is None else str(c)) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        for row in [list(headers), *cells]:
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip() + "\n")

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        pairs = list(pairs)
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            if isinstance(value, dict | list):
                value = json.dumps(value, default=str) if value else ""
            self.stdout.write(f"{key.ljust(width)}  {'' if value is None else value}\n")

    def emit(
        self,
        data: Any,
        rows: Callable[[], Iterable[Sequence[Any]]] | None = None,
        headers: Sequence[str] = (),
        fields: Callable[[], Iterable[tuple[str, Any]]] | None = None,
    ) -> None:
        """JSON of `data`, or its table (rows) or its key/value listing (fields)."""
        if self.format == "json":
            self.json(data)
        elif rows is not None:
            self.table(rows(), headers)
        elif fields is not None:
            self.fields(fields())

    def message(self, text: str) -> None:
        self.stderr.write(text + "\n")


# --- Helpers ---------------------------------------------------------------------------------


def _server(args: argparse.Namespace, config: dict[str, Any] | None = None) -> str:
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


def _client(args: argparse.Namespace) -> HttpClient:
    from mlstudio.auth import DefaultAuthentication

    return HttpClient(_server(args), DefaultAuthentication())


def _workspace(args: argparse.Namespace) -> Workspace:
    """The workspace of -w/-g/-s, else the one config.json (searched like from_config) names."""
    if args.workspace:
        return Workspace.get(
            args.workspace, args.subscription_id, args.resource_group, server_url=_server(args)
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
        server_url=_server(args, config),
    )


def _when(value: Any) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS` UTC, from ms since the epoch or ISO-8601."""
    if value in (None, ""):
        return ""
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _confirm(out: Output, what: str, name: str, yes: bool) -> None:
    if yes:
        return
    out.stderr.write(
        f"This deletes {what} {name!r} and everything in it. Type its name to confirm: "
    )
    out.stderr.flush()
    if sys.stdin.readline().strip() != name:
        raise UserErrorException("The name did not match; nothing was deleted.")


# --- Commands --------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, out: Output) -> int:
    server = _server(args)
    if args.token:
        client = HttpClient(server, TokenAuthentication(args.token))
        user = client.get("user")
        token_info = user.get("token") or {}
        save_login(
            server,
            args.token,
            username=user["username"],
            token_name=token_info.get("name"),
            expires_at=token_info.get("expires_at"),
        )
        result = {"server": server, "username": user["username"], **_public(token_info)}
    else:
        username = args.username or input("Username: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
        body: dict[str, Any] = {
            "username": username,
            "password": password,
            "token_name": args.token_name or f"mlstudio-cli@{socket.gethostname()}"[:100],
        }
        if args.expires_in:
            body["expires_in"] = args.expires_in
        minted = HttpClient(server, None).post("login", body, auth=False)
        save_login(
            server,
            minted["token"],
            username=minted["username"],
            token_id=minted.get("id"),
            token_name=minted.get("name"),
            expires_at=minted.get("expires_at"),
        )
        result = {"server": server, **_public(minted)}
    out.emit(result, fields=lambda: result.items())
    out.message(f"Logged in to {server} as {result['username']}.")
    return EXIT_OK


def _public(token: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in token.items() if k != "token"}


def cmd_logout(args: argparse.Namespace, out: Output) -> int:
    server = _server(args)
    entry = stored_login(server)
    if entry is None:
        out.message(f"Not logged in to {server}.")
        return EXIT_OK
    if entry.get("token_id") and not args.keep_token:
        # Revoke the token login minted, so a copied credentials file is worthless too.
        try:
            HttpClient(server, TokenAuthentication(entry["token"])).delete(
                f"tokens/{entry['token_id']}"
            )
        except MLStudioError as exc:
            out.message(f"Could not revoke the token on the server: {exc}")
    forget_login(server)
    out.message(f"Logged out of {server}.")
    return EXIT_OK


WS_HEADERS = ("NAME", "RESOURCE GROUP", "SUBSCRIPTION", "LOCATION", "ROLE")


def _ws_row(details: dict[str, Any]) -> tuple:
    return (
        details["name"],
        details["resourceGroup"],
        details.get("subscriptionName") or details["subscriptionId"],
        details.get("location"),
        details.get("role"),
    )


def cmd_workspace_create(args: argparse.Namespace, out: Output) -> int:
    ws = Workspace.create(
        args.name,
        subscription_id=args.subscription_id,
        resource_group=args.resource_group,
        location=args.location,
        create_resource_group=args.create_resource_group,
        exist_ok=args.exist_ok,
        description=args.description or "",
        server_url=_server(args),
    )
    details = ws.get_details()
    out.emit(details, fields=lambda: details.items())
    out.message(f"Workspace {ws.name} is ready.")
    return EXIT_OK


def cmd_workspace_list(args: argparse.Namespace, out: Output) -> int:
    found = Workspace.list(
        subscription_id=args.subscription_id,
        resource_group=args.resource_group,
        server_url=_server(args),
    )
    items = [ws._details for group in found.values() for ws in group]
    out.emit(items, rows=lambda: [_ws_row(d) for d in items], headers=WS_HEADERS)
    return EXIT_OK


def cmd_workspace_show(args: argparse.Namespace, out: Output) -> int:
    args.workspace = args.name
    details = _workspace(args).get_details()
    out.emit(details, fields=lambda: details.items())
    return EXIT_OK


def cmd_workspace_delete(args: argparse.Namespace, out: Output) -> int:
    ws = Workspace(args.subscription_id, args.resource_group, args.name, server_url=_server(args))
    _confirm(out, "workspace", ws.name, args.yes)
    job = ws.delete(wait=not args.no_wait, show_progress=not args.quiet)
    out.emit(job, fields=lambda: job.items())
    out.message(
        f"Deletion of workspace {ws.name}: {job['status']}"
        + ("" if job.get("is_finished") else f" (follow it: {job.get('url')})")
    )
    return EXIT_OK


def cmd_group_delete(args: argparse.Namespace, out: Output) -> int:
    group = ResourceGroup(args.subscription_id, args.name, server_url=_server(args))
    group.get_details()  # a missing group fails here, before the prompt
    _confirm(out, "resource group", args.name, args.yes)
    job = group.delete(wait=not args.no_wait, show_progress=not args.quiet)
    out.emit(job, fields=lambda: job.items())
    out.message(f"Deletion of resource group {args.name}: {job['status']}")
    return EXIT_OK


EXP_HEADERS = ("ID", "NAME", "STATE", "CREATED (UTC)")


def cmd_experiment_list(args: argparse.Namespace, out: Output) -> int:
    ws = _workspace(args)
    view = {"active": "ActiveOnly", "deleted": "ArchivedOnly", "all": "All"}[args.view]
    items = [exp._dto for exp in Experiment.list(ws, view_type=view, search=args.search)]
    out.emit(
        items,
        rows=lambda: [
            (d["experiment_id"], d["name"], d["lifecycle_stage"], _when(d.get("creation_time")))
            for d in items
        ],
        headers=EXP_HEADERS,
    )
    return EXIT_OK


RUN_HEADERS = ("RUN ID", "NAME", "STATUS", "STARTED (UTC)", "USER")


def cmd_run_list(args: argparse.Namespace, out: Output) -> int:
    ws = _workspace(args)
    experiment = Experiment(ws, args.experiment)
    if experiment.id is None:
        raise NotFoundError(f"No experiment named {args.experiment!r} in {ws.name}.")
    runs = experiment.get_runs(
        include_children=args.include_children, filter=args.filter, order_by=args.order_by
    )
    items = [run._dto for run in islice(runs, args.max)]
    out.emit(
        items,
        rows=lambda: [
            (
                d["run_id"],
                d.get("run_name"),
                status_name(d["status"]),
                _when(d.get("start_time")),
                d.get("user_id"),
            )
            for d in items
        ],
        headers=RUN_HEADERS,
    )
    return EXIT_OK


def cmd_run_show(args: argparse.Namespace, out: Output) -> int:
    run = Run.get(_workspace(args), args.run_id)
    details = run.get_details()
    details["metrics"] = run.get_metrics()
    details["experimentName"] = run.experiment.name
    out.emit(details, fields=lambda: details.items())
    return EXIT_OK


def cmd_run_delete(args: argparse.Namespace, out: Output) -> int:
    run = Run.get(_workspace(args), args.run_id)
    run.delete()
    result = {"run_id": run.id, "lifecycle_stage": run._dto.get("lifecycle_stage")}
    out.emit(result, fields=lambda: result.items())
    out.message(f"Deleted run {run.id} (restorable until it is purged).")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace, out: Output) -> int:
    body: dict[str, Any] = {"name": args.name, "scope": args.scope}
    if args.expires_in:
        body["expires_in"] = args.expires_in
    if args.workspace:
        body["workspace_id"] = _workspace(args).workspace_id
    client = _client(args)
    token = client.post("tokens", body)
    if out.format == "json":
        out.json(token)
    else:
        out.fields((k, v) for k, v in token.items() if k != "token")
        out.message("The token (shown once; store it now):")
        out.stdout.write(token["token"] + "\n")
    return EXIT_OK


# --- Parser ----------------------------------------------------------------------------------


GLOBAL_DEFAULTS = {"server": None, "output": "table", "quiet": False}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        # argparse's own behaviour (usage + message, exit 2), kept in one line on stderr.
        self.exit(EXIT_USAGE, f"mlstudio: error: {message}\n")


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

    parser = _Parser(
        prog="mlstudio",
        description="ML Studio command line: workspaces, experiments, runs and tokens.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 auth, 4 not found, 5 rejected.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"mlstudio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    login = commands.add_parser("login", parents=[common], help="log in and store a token")
    login.add_argument("--username", "-u")
    login.add_argument("--token", help="store this personal token instead of logging in")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--token-name", help="name of the token login creates")
    login.add_argument("--expires-in", type=int, help="token lifetime in seconds")
    login.set_defaults(func=cmd_login)

    logout = commands.add_parser("logout", parents=[common], help="forget the stored token")
    logout.add_argument("--keep-token", action="store_true", help="do not revoke it")
    logout.set_defaults(func=cmd_logout)

    workspace = commands.add_parser("workspace", help="workspaces").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    create = workspace.add_parser("create", parents=[common], help="create a workspace")
    create.add_argument("name")
    create.add_argument("-s", "--subscription-id", required=True)
    create.add_argument("-g", "--resource-group", required=True)
    create.add_argument("--location")
    create.add_argument("--description")
    create.add_argument(
        "--create-resource-group",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create the resource group when missing (default: yes)",
    )
    create.add_argument("--exist-ok", action="store_true", help="succeed if it exists")
    create.set_defaults(func=cmd_workspace_create)

    wlist = workspace.add_parser("list", parents=[common], help="workspaces you can see")
    wlist.add_argument("-s", "--subscription-id")
    wlist.add_argument("-g", "--resource-group")
    wlist.set_defaults(func=cmd_workspace_list)

    show = workspace.add_parser("show", parents=[common], help="a workspace's details")
    show.add_argument("name", nargs="?", help="default: the workspace of config.json")
    show.add_argument("-g", "--resource-group")
    show.add_argument("-s", "--subscription-id")
    show.set_defaults(func=cmd_workspace_show)

    delete = workspace.add_parser("delete", parents=[common], help="delete a workspace")
    delete.add_argument("name")
    delete.add_argument("-g", "--resource-group", required=True)
    delete.add_argument("-s", "--subscription-id", required=True)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
    delete.add_argument("--no-wait", action="store_true", help="do not wait for the job")
    delete.set_defaults(func=cmd_workspace_delete)

    group = commands.add_parser("group", help="resource groups").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    gdelete = group.add_parser("delete", parents=[common], help="delete a resource group")
    gdelete.add_argument("name")
    gdelete.add_argument("-s", "--subscription-id", required=True)
    gdelete.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
    gdelete.add_argument("--no-wait", action="store_true", help="do not wait for the job")
    gdelete.set_defaults(func=cmd_group_delete)

    experiment = commands.add_parser("experiment", help="experiments").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    elist = experiment.add_parser("list", parents=[common, ws_flags], help="list experiments")
    elist.add_argument("--view", choices=["active", "deleted", "all"], default="active")
    elist.add_argument("--search", help="name contains (any case)")
    elist.set_defaults(func=cmd_experiment_list)

    run = commands.add_parser("run", help="runs").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    rlist = run.add_parser("list", parents=[common, ws_flags], help="runs of an experiment")
    rlist.add_argument("--experiment", "-e", required=True)
    rlist.add_argument("--filter", help='MLflow filter, e.g. "metrics.alpha > 0.01"')
    rlist.add_argument("--order-by", action="append", help="MLflow order-by (repeatable)")
    rlist.add_argument("--include-children", action="store_true")
    rlist.add_argument("--max", type=int, default=None, help="at most this many runs")
    rlist.set_defaults(func=cmd_run_list)
    rshow = run.add_parser("show", parents=[common, ws_flags], help="a run's details")
    rshow.add_argument("run_id")
    rshow.set_defaults(func=cmd_run_show)
    rdelete = run.add_parser("delete", parents=[common, ws_flags], help="delete a run")
    rdelete.add_argument("run_id")
    rdelete.set_defaults(func=cmd_run_delete)

    token = commands.add_parser("token", help="personal tokens").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    tcreate = token.add_parser("create", parents=[common, ws_flags], help="create a token")
    tcreate.add_argument("name")
    tcreate.add_argument("--scope", choices=["read", "write", "full"], default="full")
    tcreate.add_argument("--expires-in", type=int, help="lifetime in seconds (default: none)")
    tcreate.set_defaults(func=cmd_token_create)
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
