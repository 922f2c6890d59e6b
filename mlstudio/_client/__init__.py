"""The SDK's client layer: what every SDK object stands on.

- ``http``: the HTTP client of one server and credential, errors mapped to SDK exceptions;
- ``tenancy``: the API paths of subscriptions, resource groups and workspaces;
- ``jobs``: following a server job (a cascade deletion) with a progress bar;
- ``config``: finding and reading config.json;
- ``renewal``: the workspace tracking tokens MLflow sends, renewed before they expire.

It imports nothing of the SDK but ``mlstudio.auth``, ``mlstudio.exceptions`` and
``mlstudio._version``.
"""
