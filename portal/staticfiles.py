"""A static files finder for plotly.js as the installed `plotly` package ships it.

Only the one bundle is exposed (as vendor/plotly/plotly.min.js), not the package's
datasets and templates, so collectstatic copies 4.8 MB rather than the whole folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor/plotly"
BUNDLE = "plotly.min.js"


def _package_data() -> Path | None:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "package_data"
    return folder if (folder / BUNDLE).is_file() else None


class PlotlyFinder(BaseFinder):
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        find_all = find_all or kwargs.get("all", False)
        folder = _package_data()
        if folder is not None and path == f"{PREFIX}/{BUNDLE}":
            found = str(folder / BUNDLE)
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns: list[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        folder = _package_data()
        if folder is None:
            return
        storage = FileSystemStorage(location=str(folder))
        storage.prefix = PREFIX
        yield BUNDLE, storage
