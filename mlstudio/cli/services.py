"""Web services on the command line: ``mlstudio service list|show|logs|keys|delete``.

Deploying is the SDK's (``Webservice.deploy_from_image``): a deployment configuration
is code. The command line looks after what is deployed."""

from __future__ import annotations

import argparse
from typing import Any

from mlstudio.cli.common import EXIT_OK, add_action, confirm_deletion, subcommands, workspace_of
from mlstudio.cli.output import Output, when
from mlstudio.exceptions import UserErrorException
from mlstudio.webservice import Webservice

SERVICE_HEADERS = ("NAME", "TYPE", "STATE", "IMAGE", "SCORING URI", "UPDATED")


def _row(service: Webservice) -> tuple:
    return (
        service.name,
        service.compute_type,
        service.state,
        service.image_id,
        service.scoring_uri or "",
        when(service._details.get("updated_at")),
    )


def _fields(details: dict[str, Any]) -> dict[str, Any]:
    job = details.get("deployment") or {}
    deployment = f"{job.get('operation')} {job.get('status')}: {job.get('phase') or ''}"
    return {
        "name": details.get("name"),
        "compute_type": details.get("compute_type"),
        "compute_target": details.get("compute_target"),
        "state": details.get("state"),
        "error": details.get("error") or None,
        "image": details.get("image"),
        "model": "{name}:{version}".format(**details["model"]) if details.get("model") else None,
        "scoring_uri": details.get("scoring_uri"),
        "swagger_uri": details.get("swagger_uri"),
        "auth_enabled": details.get("auth_enabled"),
        "description": details.get("description"),
        "tags": details.get("tags"),
        "properties": details.get("properties"),
        "config": details.get("config"),
        "deployment": deployment.rstrip(": ") if job else None,
        "created": when(details.get("created_at")),
        "created_by": details.get("created_by"),
        "updated": when(details.get("updated_at")),
    }


def _tags(values: list[str] | None) -> list[Any]:
    tags: list[Any] = []
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not key:
            raise UserErrorException(f"--tag takes KEY or KEY=VALUE; got {value!r}.")
        tags.append([key, rest] if sep else key)
    return tags


def cmd_service_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio service list``."""
    services = Webservice.list(
        workspace_of(args),
        image_name=args.image_name,
        compute_type=args.compute_type,
        tags=_tags(args.tag) or None,
    )
    out.emit(
        [service._details for service in services],
        rows=lambda: [_row(service) for service in services],
        headers=SERVICE_HEADERS,
    )
    return EXIT_OK


def cmd_service_show(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio service show NAME``."""
    details = Webservice(workspace_of(args), args.name)._details
    out.emit(details, fields=lambda: _fields(details).items())
    return EXIT_OK


def cmd_service_logs(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio service logs NAME``: text, whatever --output says."""
    logs = Webservice(workspace_of(args), args.name).get_logs(num_lines=args.num_lines)
    out.stdout.write(logs if logs.endswith("\n") or not logs else logs + "\n")
    return EXIT_OK


def cmd_service_keys(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio service keys NAME [--regenerate Primary|Secondary]``."""
    service = Webservice(workspace_of(args), args.name)
    if args.regenerate:
        service.regen_key(args.regenerate)
        out.message(f"Regenerated the {args.regenerate} key of {service.name}.")
    primary, secondary = service.get_keys()
    out.record({"primary_key": primary, "secondary_key": secondary})
    return EXIT_OK


def cmd_service_delete(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio service delete NAME``."""
    service = Webservice(workspace_of(args), args.name)
    confirm_deletion(out, "the web service", service.name, args.yes)
    service.delete()
    out.message(f"Deleted web service {service.name}.")
    return EXIT_OK


def add_commands(
    commands: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    ws_flags: argparse.ArgumentParser,
) -> None:
    """Declare ``service``."""
    flags = [common, ws_flags]
    service = subcommands(commands, "service", "web services of a workspace")
    listing = add_action(service, "list", "list web services", cmd_service_list, flags)
    listing.add_argument("--compute-type", metavar="TYPE", help="ACI, AKS or Local")
    listing.add_argument("--image-name", metavar="NAME", help="services of this image")
    listing.add_argument("--tag", action="append", metavar="KEY[=VALUE]", help="with this tag")
    add_action(service, "show", "a service's details", cmd_service_show, flags, "name")
    logs = add_action(service, "logs", "a service's output", cmd_service_logs, flags, "name")
    logs.add_argument("--num-lines", "-n", type=int, default=5000, help="newest lines (5000)")
    keys = add_action(
        service, "keys", "a service's keys (contributors)", cmd_service_keys, flags, "name"
    )
    keys.add_argument(
        "--regenerate", choices=["Primary", "Secondary"], help="replace this key first"
    )
    delete = add_action(service, "delete", "delete a service", cmd_service_delete, flags, "name")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm")
