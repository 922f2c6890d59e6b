"""config.json: where Workspace.from_config looks for it and what it must hold."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlstudio.exceptions import ConfigurationError

CONFIG_DIR = ".mlstudio"
CONFIG_FILE = "config.json"
CONFIG_KEYS = ("subscription_id", "resource_group", "workspace_name")


def find_config(path: str | os.PathLike | None = None, file_name: str | None = None) -> Path:
    """The config file `Workspace.from_config` reads.

    Looks, starting in `path` (default: the current folder) and going up through its
    parents, for ``<folder>/<file_name>`` and then ``<folder>/.mlstudio/<file_name>``.

    Args:
        path: A config file, or the folder to start searching in.
        file_name: The file's name (default ``config.json``).

    Returns:
        The path of the first file found.

    Raises:
        ConfigurationError: there is none.
    """
    file_name = file_name or CONFIG_FILE
    start = Path(path).expanduser() if path is not None else Path.cwd()
    if start.is_file():
        return start
    start = start.resolve()
    for folder in (start, *start.parents):
        for candidate in (folder / file_name, folder / CONFIG_DIR / file_name):
            if candidate.is_file():
                return candidate
    raise ConfigurationError(
        f"No {file_name} found in {start}, its {CONFIG_DIR}/ folder or any parent folder. "
        "Download it from the workspace page, or create it with ws.write_config()."
    )


def load_config(
    path: str | os.PathLike | None = None, file_name: str | None = None
) -> dict[str, Any]:
    """The settings of the config file :func:`find_config` finds.

    Returns:
        Its JSON object, with subscription_id, resource_group and workspace_name present.

    Raises:
        ConfigurationError: no file, not a JSON object, or a key missing.
    """
    found = find_config(path, file_name)
    try:
        config = json.loads(found.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read {found}: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigurationError(f"{found} must hold a JSON object.")
    missing = [key for key in CONFIG_KEYS if not config.get(key)]
    if missing:
        raise ConfigurationError(f"{found} lacks {', '.join(missing)}.")
    return config
