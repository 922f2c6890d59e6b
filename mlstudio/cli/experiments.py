"""``mlstudio experiment ...``, ``mlstudio run ...`` and ``mlstudio token ...``."""

from __future__ import annotations

import argparse
from itertools import islice
from typing import Any

from mlstudio.cli.common import (
    EXIT_OK,
    http_client,
    subcommands,
    without_secret,
    workspace_of,
)
from mlstudio.cli.output import Output, when
from mlstudio.exceptions import NotFoundError
from mlstudio.experiment import Experiment
from mlstudio.run import Run, status_name

EXP_HEADERS = ("ID", "NAME", "STATE", "CREATED (UTC)")
RUN_HEADERS = ("RUN ID", "NAME", "STATUS", "STARTED (UTC)", "USER")


def cmd_experiment_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio experiment list``."""
    ws = workspace_of(args)
    view = {"active": "ActiveOnly", "deleted": "ArchivedOnly", "all": "All"}[args.view]
    items = [exp._dto for exp in Experiment.list(ws, view_type=view, search=args.search)]
    out.emit(
        items,
        rows=lambda: [
            (d["experiment_id"], d["name"], d["lifecycle_stage"], when(d.get("creation_time")))
            for d in items
        ],
        headers=EXP_HEADERS,
    )
    return EXIT_OK


def cmd_run_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run list``."""
    ws = workspace_of(args)
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
                when(d.get("start_time")),
                d.get("user_id"),
            )
            for d in items
        ],
        headers=RUN_HEADERS,
    )
    return EXIT_OK


def cmd_run_show(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run show``."""
    run = Run.get(workspace_of(args), args.run_id)
    details = run.get_details()
    details["metrics"] = run.get_metrics()
    details["experimentName"] = run.experiment.name
    out.record(details)
    return EXIT_OK


def cmd_run_delete(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run delete``."""
    run = Run.get(workspace_of(args), args.run_id)
    run.delete()
    out.record({"run_id": run.id, "lifecycle_stage": run._dto.get("lifecycle_stage")})
    out.message(f"Deleted run {run.id} (restorable until it is purged).")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio token create``: the token itself is shown once."""
    body: dict[str, Any] = {"name": args.name, "scope": args.scope}
    if args.expires_in:
        body["expires_in"] = args.expires_in
    if args.workspace:
        body["workspace_id"] = workspace_of(args).workspace_id
    client = http_client(args)
    token = client.post("tokens", body)
    if out.format == "json":
        out.json(token)
    else:
        out.fields(without_secret(token).items())
        out.message("The token (shown once; store it now):")
        out.stdout.write(token["token"] + "\n")
    return EXIT_OK


def add_commands(
    commands: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    ws_flags: argparse.ArgumentParser,
) -> argparse._SubParsersAction:
    """Declare ``experiment``, ``run`` and ``token``; `common` holds the global options,
    `ws_flags` -w/-g/-s. Answers the actions of ``run``, for remote runs to add theirs."""
    experiment = subcommands(commands, "experiment", "experiments")
    elist = experiment.add_parser("list", parents=[common, ws_flags], help="list experiments")
    elist.add_argument("--view", choices=["active", "deleted", "all"], default="active")
    elist.add_argument("--search", help="name contains (any case)")
    elist.set_defaults(func=cmd_experiment_list)

    run = subcommands(commands, "run", "runs")
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

    token = subcommands(commands, "token", "personal tokens")
    tcreate = token.add_parser("create", parents=[common, ws_flags], help="create a token")
    tcreate.add_argument("name")
    tcreate.add_argument("--scope", choices=["read", "write", "full"], default="full")
    tcreate.add_argument("--expires-in", type=int, help="lifetime in seconds (default: none)")
    tcreate.set_defaults(func=cmd_token_create)
    return run
