"""Azurite (Microsoft's Azure Storage emulator, from npm) started by the test suite.

Load with `pytest_plugins = ["tracking.tests.azurite"]`. `make install-test` installs
it into var/node; when it is missing the fixture installs it the same way. `blob_root`
gives workspaces roots in a fresh container; `backend` runs a test with the cast's
workspaces on a local folder, then on Blob.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, require

NODE_PREFIX = ROOT / "var" / "node"
AZURITE_BLOB = NODE_PREFIX / "node_modules" / ".bin" / "azurite-blob"

# The emulator's fixed, public development account (documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class Azurite:
    blob_endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    connection_string: str

    def container_url(self, container: str, prefix: str = "") -> str:
        return f"{self.blob_endpoint}/{container}" + (f"/{prefix}" if prefix else "")


def _install() -> Path:
    if AZURITE_BLOB.exists():
        return AZURITE_BLOB
    require(shutil.which("npm") is not None, "npm is needed to install Azurite")
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--no-save", "--silent", "--prefix", str(NODE_PREFIX), "azurite@3"],
        check=True,
        timeout=600,
    )
    return AZURITE_BLOB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Azurite did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    binary = _install()
    port = _free_port()
    data = tmp_path_factory.mktemp("azurite")
    log = data / "azurite.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                str(data),
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--silent",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, process, log)
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        yield Azurite(
            blob_endpoint=endpoint,
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
                f"AccountKey={ACCOUNT_KEY};BlobEndpoint={endpoint};"
            ),
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def blob_root(azurite, settings) -> Callable[..., str]:
    """A fresh Azurite container; returns a function giving a workspace a root in it."""
    from azure.storage.blob import ContainerClient

    settings.AZURE_STORAGE_CONNECTION_STRING = azurite.connection_string
    container = f"t{uuid.uuid4().hex[:20]}"
    ContainerClient.from_connection_string(azurite.connection_string, container).create_container()

    def assign(workspace) -> str:
        workspace.artifact_root = azurite.container_url(container, f"roots/{workspace.id}")
        workspace.save(update_fields=["artifact_root"])
        return workspace.artifact_root

    return assign


@pytest.fixture(params=["local", "blob"])
def backend(request, cast) -> str:
    """Run the test with the cast's workspaces on a local folder, then on Azure Blob
    (Azurite is started only for the second)."""
    if request.param == "blob":
        assign = request.getfixturevalue("blob_root")
        assign(cast.workspace)
        assign(cast.other_workspace)
    return request.param
