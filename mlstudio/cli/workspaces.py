"""``mlstudio workspace ...`` and ``mlstudio group ...``: create, list, show and delete."""

from __future__ import annotations

import argparse
from typing import Any

from mlstudio.cli.common import (
    EXIT_OK,
    confirm_deletion,
    server_url,
    subcommands,
    workspace_of,
)
from mlstudio.cli.output import Output
from mlstudio.scopes import ResourceGroup
from mlstudio.workspace import Workspace

WS_HEADERS = ("NAME", "RESOURCE GROUP", "SUBSCRIPTION", "LOCATION", "ROLE")


def _ws_row(details: dict[str, Any]) -> tuple:
    return (
        details["name"],
        details["resourceGroup"],
        details.get("subscriptionName") or details["subscriptionId"],
        details.get("location"),
        details.get("role"),
    )


def _delete(
    args: argparse.Namespace, out: Output, what: str, scope: Workspace | ResourceGroup
) -> dict[str, Any]:
    """Confirm, delete `scope` as --no-wait and --quiet say, and write the deletion job."""
    confirm_deletion(out, what, scope.name, args.yes)
    job = scope.delete(wait=not args.no_wait, show_progress=not args.quiet)
    out.record(job)
    return job


def cmd_workspace_create(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio workspace create``."""
    ws = Workspace.create(
        args.name,
        subscription_id=args.subscription_id,
        resource_group=args.resource_group,
        location=args.location,
        create_resource_group=args.create_resource_group,
        exist_ok=args.exist_ok,
        description=args.description or "",
        server_url=server_url(args),
    )
    out.record(ws._details)  # as the server answered the creation (or, exist_ok, the lookup)
    out.message(f"Workspace {ws.name} is ready.")
    return EXIT_OK


def cmd_workspace_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio workspace list``."""
    found = Workspace.list(
        subscription_id=args.subscription_id,
        resource_group=args.resource_group,
        server_url=server_url(args),
    )
    items = [ws._details for group in found.values() for ws in group]
    out.emit(items, rows=lambda: [_ws_row(d) for d in items], headers=WS_HEADERS)
    return EXIT_OK


def cmd_workspace_show(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio workspace show``."""
    args.workspace = args.name
    out.record(workspace_of(args).get_details())
    return EXIT_OK


def cmd_workspace_delete(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio workspace delete``."""
    ws = Workspace(
        args.subscription_id, args.resource_group, args.name, server_url=server_url(args)
    )
    job = _delete(args, out, "workspace", ws)
    out.message(
        f"Deletion of workspace {ws.name}: {job['status']}"
        + ("" if job.get("is_finished") else f" (follow it: {job.get('url')})")
    )
    return EXIT_OK


def cmd_group_delete(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio group delete``."""
    group = ResourceGroup(args.subscription_id, args.name, server_url=server_url(args))
    group.get_details()  # a missing group fails here, before the prompt
    job = _delete(args, out, "resource group", group)
    out.message(f"Deletion of resource group {args.name}: {job['status']}")
    return EXIT_OK


def _deletion_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the job")


def add_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Declare ``workspace`` and ``group``; `common` holds the global options."""
    workspace = subcommands(commands, "workspace", "workspaces")
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
    _deletion_flags(delete)
    delete.set_defaults(func=cmd_workspace_delete)

    group = subcommands(commands, "group", "resource groups")
    gdelete = group.add_parser("delete", parents=[common], help="delete a resource group")
    gdelete.add_argument("name")
    gdelete.add_argument("-s", "--subscription-id", required=True)
    _deletion_flags(gdelete)
    gdelete.set_defaults(func=cmd_group_delete)
