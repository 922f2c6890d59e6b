"""Remote runs on the command line: ``mlstudio run submit|logs|cancel``, ``mlstudio compute
...`` and ``mlstudio environment ...``."""

from __future__ import annotations

import argparse
from typing import Any

from mlstudio._client.remote import stage_status
from mlstudio.cli.common import EXIT_ERROR, EXIT_OK, add_action, subcommands, workspace_of
from mlstudio.cli.output import Output, when
from mlstudio.compute import AmlCompute, ComputeTarget
from mlstudio.environment import Environment, split_reference
from mlstudio.exceptions import RunFailedError, UserErrorException
from mlstudio.experiment import Experiment
from mlstudio.run import Run
from mlstudio.script_run_config import ScriptRunConfig

COMPUTE_HEADERS = ("NAME", "MAX NODES", "QUEUED", "RUNNING", "WORKERS", "DESCRIPTION")
ENV_HEADERS = ("NAME", "VERSION", "PYTHON", "PACKAGES", "CURATED")
INLINE_ENV_NAME = "cli"  # the name of an environment given with --pip and no --environment
PACKAGES_WIDTH = 60


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise UserErrorException(f"{flag} takes KEY=VALUE; got {value!r}.")
        pairs[key] = rest
    return pairs


def _environment(args: argparse.Namespace, ws: Any, default: str | None) -> Environment | None:
    """The environment the flags describe: --pip/--requirements/--python/--env-var make one
    (named --environment, else `default`); --environment alone names a stored one."""
    inline = args.pip or args.requirements or args.python or args.env_var
    if not inline:
        if not args.environment:
            return None
        name, version = split_reference(args.environment)
        return Environment.get(ws, name, version)
    name = args.environment or default
    if name is None:
        raise UserErrorException("Name the environment: mlstudio environment register NAME ...")
    if ":" in name:
        raise UserErrorException(
            "--environment NAME:VERSION names a stored environment; with --pip, "
            "--requirements, --python or --env-var give a plain name."
        )
    if args.requirements:
        env = Environment.from_pip_requirements(name, args.requirements)
    else:
        env = Environment(name)
    deps = env.python.conda_dependencies
    for package in args.pip or []:
        deps.add_pip_package(package)
    if args.python:
        deps.set_python_version(args.python)
    env.environment_variables.update(_pairs(args.env_var, "--env-var"))
    return env


def _environment_flags(parser: argparse.ArgumentParser, with_name: bool) -> None:
    if with_name:
        parser.add_argument(
            "--environment",
            "--env",
            metavar="NAME[:VERSION]",
            help="a stored or curated environment (default mlstudio-minimal); with --pip "
            f"and the like, the name of the one they make (default {INLINE_ENV_NAME!r})",
        )
    parser.add_argument("--pip", action="append", metavar="PACKAGE", help="a pip package")
    parser.add_argument("-r", "--requirements", metavar="FILE", help="a requirements file")
    parser.add_argument("--python", metavar="VERSION", help="Python version, e.g. 3.11")
    parser.add_argument("--env-var", action="append", metavar="KEY=VALUE", help="a variable")


# --- mlstudio run submit | logs | cancel ----------------------------------------------------


def _job_fields(job: dict[str, Any]) -> dict[str, Any]:
    env = job.get("environment") or {}
    return {
        "run_id": job.get("run_id"),
        "experiment": job.get("experiment_name"),
        "status": stage_status(job.get("stage")),
        "compute": job.get("compute"),
        "environment": f"{env.get('name')}:{env.get('version')}" if env else None,
        "script": job.get("script"),
        "arguments": job.get("arguments"),
        "exit_code": job.get("exit_code"),
        "error": job.get("error") or None,
        "created": when(job.get("created_at")),
        "url": job.get("url"),
    }


def cmd_run_submit(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run submit``."""
    ws = workspace_of(args)
    config = ScriptRunConfig(
        args.source_dir,
        args.script,
        arguments=args.arg or [],
        compute_target=args.compute,
        max_run_duration_seconds=args.max_duration,
    )
    env = _environment(args, ws, INLINE_ENV_NAME)
    if env is not None:
        config.run_config.environment = env
    run = Experiment(ws, args.experiment).submit(
        config, tags=_pairs(args.tag, "--tag") or None, run_name=args.run_name
    )
    job = run.get_job()
    if not args.follow:
        out.emit(job, fields=lambda: _job_fields(job).items())
        if out.format != "json":
            out.message(f"Follow it: mlstudio run logs {run.id} --follow")
        return EXIT_OK
    out.message(f"Run {run.id} submitted to {job.get('compute')}: {job.get('url')}")
    # The script's output goes to stdout, unless stdout carries the JSON of the end.
    run.stream_logs(out.stderr if out.format == "json" else out.stdout, follow=True)
    try:
        final = run.wait_for_completion()
    except RunFailedError as failed:  # main() says why and exits 1
        if out.format == "json":
            out.json(failed.job)
        raise
    if out.format == "json":
        out.json(final)
    status = stage_status(final.get("stage"))
    out.message(f"Run {run.id}: {status}")
    return EXIT_OK if status == "Completed" else EXIT_ERROR


def cmd_run_logs(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run logs``: the script's output (text, whatever --output says)."""
    run = Run.get(workspace_of(args), args.run_id)
    run.stream_logs(out.stdout, follow=args.follow)
    return EXIT_OK


def cmd_run_cancel(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio run cancel``."""
    run = Run.get(workspace_of(args), args.run_id)
    run.cancel()
    if run.is_remote:
        job = run.get_job()
        out.emit(job, fields=lambda: _job_fields(job).items())
        if job.get("stage") == "canceled":
            out.message(f"Run {run.id} canceled.")
        else:
            out.message(f"Cancel of run {run.id} requested: its worker stops it shortly.")
    else:
        out.record({"run_id": run.id, "status": run.status})
        out.message(f"Run {run.id} canceled.")
    return EXIT_OK


# --- mlstudio compute ...  -------------------------------------------------------------------


def _compute_row(details: dict[str, Any]) -> tuple:
    alive = sum(1 for worker in details.get("workers") or [] if worker.get("alive"))
    return (
        details["name"],
        details["max_nodes"],
        details.get("queued", 0),
        details.get("running", 0),
        alive,
        details.get("description") or "",
    )


def cmd_compute_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio compute list``."""
    items = [target._details for target in ComputeTarget.list(workspace_of(args))]
    out.emit(items, rows=lambda: [_compute_row(d) for d in items], headers=COMPUTE_HEADERS)
    return EXIT_OK


def cmd_compute_show(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio compute show``."""
    out.record(ComputeTarget(workspace_of(args), args.name)._details)
    return EXIT_OK


def cmd_compute_create(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio compute create``."""
    target = ComputeTarget.create(
        workspace_of(args),
        args.name,
        AmlCompute.provisioning_configuration(
            max_nodes=args.max_nodes, description=args.description
        ),
    )
    out.record(target._details)
    return EXIT_OK


def cmd_compute_delete(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio compute delete``."""
    ComputeTarget(workspace_of(args), args.name).delete()
    out.message(f"Deleted compute target {args.name}.")
    return EXIT_OK


# --- mlstudio environment ... ----------------------------------------------------------------


def _short(packages: list[str]) -> str:
    text = " ".join(packages)
    return text if len(text) <= PACKAGES_WIDTH else text[: PACKAGES_WIDTH - 1] + "…"


def cmd_environment_list(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio environment list``."""
    items = [env.get_details() for env in Environment.list(workspace_of(args)).values()]
    out.emit(
        items,
        rows=lambda: [
            (
                d["name"],
                d.get("version"),
                d.get("python_version") or "default",
                _short(d.get("pip_packages") or []),
                "yes" if d.get("curated") else "",
            )
            for d in items
        ],
        headers=ENV_HEADERS,
    )
    return EXIT_OK


def cmd_environment_show(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio environment show NAME[:VERSION]``."""
    name, version = split_reference(args.name)
    out.record(Environment.get(workspace_of(args), name, version).get_details())
    return EXIT_OK


def cmd_environment_register(args: argparse.Namespace, out: Output) -> int:
    """``mlstudio environment register NAME --pip ...``."""
    if not (args.pip or args.requirements or args.python or args.env_var):
        raise UserErrorException("Give the packages: --pip PACKAGE ... or -r requirements.txt.")
    ws = workspace_of(args)
    args.environment = args.name
    env = _environment(args, ws, None)
    assert env is not None  # the flags above make one
    if args.description:
        env.description = args.description
    out.record(env.register(ws).get_details())
    return EXIT_OK


def add_run_commands(
    run: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    ws_flags: argparse.ArgumentParser,
) -> None:
    """Declare ``run submit``, ``run logs`` and ``run cancel`` on the ``run`` command."""
    submit = run.add_parser(
        "submit",
        parents=[common, ws_flags],
        help="run a script on a compute target",
        description="Zip SOURCE_DIR (honouring .amlignore, else .gitignore), upload it and "
        "run SCRIPT in it on a compute target, as a new run of the experiment.",
        epilog="Script arguments: --arg VALUE each, --arg=--alpha for one starting with '-'. "
        "Example: mlstudio run submit ./train train.py -e my_experiment --arg=--alpha "
        "--arg 0.5 --pip mlflow --pip scikit-learn --follow",
    )
    submit.add_argument("source_dir", help="the folder to send")
    submit.add_argument("script", help="the file to run, relative to source_dir")
    submit.add_argument("--arg", action="append", metavar="VALUE", help="a script argument")
    submit.add_argument("--experiment", "-e", required=True, help="made if new")
    submit.add_argument("--compute", "-c", default="local", help="target (default local)")
    _environment_flags(submit, with_name=True)
    submit.add_argument("--run-name", help="the run's name")
    submit.add_argument("--tag", action="append", metavar="KEY=VALUE", help="a run tag")
    submit.add_argument("--max-duration", type=int, metavar="SECONDS", help="stop it after")
    submit.add_argument(
        "--follow", "-f", action="store_true", help="print its output until it ends"
    )
    submit.set_defaults(func=cmd_run_submit)

    flags = [common, ws_flags]
    logs = add_action(run, "logs", "a remote run's output", cmd_run_logs, flags, "run_id")
    logs.add_argument("--follow", "-f", action="store_true", help="until the run ends")
    add_action(run, "cancel", "cancel a run", cmd_run_cancel, flags, "run_id")


def add_commands(
    commands: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    ws_flags: argparse.ArgumentParser,
) -> None:
    """Declare ``compute`` and ``environment``."""
    flags = [common, ws_flags]
    compute = subcommands(commands, "compute", "compute targets of a workspace")
    add_action(compute, "list", "list targets", cmd_compute_list, flags)
    add_action(compute, "show", "a target's details", cmd_compute_show, flags, "name")
    create = add_action(compute, "create", "create a target", cmd_compute_create, flags, "name")
    create.add_argument("--max-nodes", type=int, help="runs at once (default 1)")
    create.add_argument("--description")
    add_action(compute, "delete", "delete a target", cmd_compute_delete, flags, "name")

    environment = subcommands(commands, "environment", "environments of a workspace")
    add_action(environment, "list", "latest version of each", cmd_environment_list, flags)
    eshow = add_action(environment, "show", "one environment", cmd_environment_show, flags)
    eshow.add_argument("name", metavar="NAME[:VERSION]")
    register = add_action(
        environment, "register", "store a new version", cmd_environment_register, flags, "name"
    )
    _environment_flags(register, with_name=False)
    register.add_argument("--description")
