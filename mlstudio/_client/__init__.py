"""The SDK's client layer: what every SDK object stands on.

The SDK's floor plan, top to bottom. A module imports only modules on floors below its
own — at module level, in functions and under TYPE_CHECKING alike — and modules that
share a floor do not import each other. ``.importlinter``'s ``sdk-layers`` contract holds
the plan, and lists every module, so a new one must be given a floor::

    mlstudio (__init__), __main__    the public names; `python -m mlstudio`
    cli  |  mlflow_plugin            the `mlstudio` command; MLflow's auth provider
    scopes                           ResourceGroup, Subscription
    workspace                        Workspace
    experiment                       Experiment, ws.experiments, Experiment.submit
    run  |  script_run_config        Run; ScriptRunConfig, RunConfiguration
    compute  |  environment          ComputeTarget, AmlCompute; Environment
    _client  |  conda_dependencies   this package: http, tenancy, jobs, config, renewal,
                                     parents, snapshot, remote; CondaDependencies
    auth                             credentials
    exceptions  |  _version          errors; the SDK's version

The modules of this package:

- ``http``: the HTTP client of one server and credential, errors mapped to SDK exceptions;
- ``tenancy``: the API paths of subscriptions, resource groups and workspaces, and the
  creation of a resource group (which Workspace.create does on the way);
- ``jobs``: following a server job (a cascade deletion) with a progress bar;
- ``config``: finding and reading config.json;
- ``renewal``: the workspace tracking tokens MLflow sends, renewed before they expire;
- ``snapshot``: zipping a run's source directory (ignore files, limits, reproducible zip)
  and uploading it once per content;
- ``remote``: a remote run's job and output: stages as statuses, tailing the log;
- ``parents``: how an object reaches the objects above it — the parent it was built with,
  or a builder that the parent's module provides at import — without importing them.
"""
