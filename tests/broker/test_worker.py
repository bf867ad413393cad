"""A worker of ``simpul serve --workers N`` (``broker._worker``); it serves in
``tests/e2e/test_workers.py``, and here what it loads is checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import sys
from broker import _worker

config = _worker.server_config("warning")
config.load()  # builds the app, as a worker does before it serves
assert config.loaded_app is not None
from broker._http1 import ExchangeProtocol
assert config.http_protocol_class is ExchangeProtocol  # exchanges past the ASGI layers
loaded = {name for name, module in sys.modules.items() if module is not None}
packages = {name.split(".")[0] for name in loaded}
unused = {"rich", "pygments", "watchfiles", "websockets", "wsproto", "httpx", "httpcore", "click"}
print(sorted((packages & unused) | (loaded & {"pydantic.v1", "uvicorn.main", "multiprocessing"})))
"""


def _printed(script: str, data_dir: Path) -> str:
    """What ``script`` prints in a fresh interpreter, started as a worker is (``-P``)."""
    env = {"SIMPUL_ENVIRONMENT": "dev", "SIMPUL_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-P", "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_worker_loads_none_of_what_it_never_uses(tmp_path: Path) -> None:
    printed = _printed(_SCRIPT, tmp_path)
    # uvicorn's WebSocket protocol and its reloader's watchfiles, rich and pygments (which
    # structlog and httpx would import), httpx (webhooks and adapters have their own client)
    # pydantic.v1 (which FastAPI imports to check for v1 models), and uvicorn's command line
    # with click and multiprocessing: ≈4, ≈1.4, ≈3, ≈3, ≈1.7 and ≈2.5 MB a worker would hold
    # for nothing.
    assert printed.strip() == "[]"


_UVICORN_SCRIPT = """
from broker import _worker

# A worker's uvicorn is the package without its __init__, given the two names its own modules
# import from it; and the protocols, loops and lifespan it serves with import from it.
import uvicorn, uvicorn.config, uvicorn.server
assert uvicorn.Config is uvicorn.config.Config and uvicorn.Server is uvicorn.server.Server
from uvicorn.lifespan.on import LifespanOn
from uvicorn.loops.auto import auto_loop_factory
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
print(_worker.Server is uvicorn.server.Server, hasattr(uvicorn, "run"))
"""


def test_a_worker_imports_uvicorn_without_its_command_line(tmp_path: Path) -> None:
    assert _printed(_UVICORN_SCRIPT, tmp_path).split() == ["True", "False"]
