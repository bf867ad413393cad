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
loaded = {name for name, module in sys.modules.items() if module is not None}
packages = {name.split(".")[0] for name in loaded}
unused = {"rich", "pygments", "watchfiles", "websockets", "wsproto", "httpx", "httpcore"}
print(sorted((packages & unused) | (loaded & {"pydantic.v1"})))
"""


def test_a_worker_loads_none_of_what_it_never_uses(tmp_path: Path) -> None:
    env = {"SIMPUL_ENVIRONMENT": "dev", "SIMPUL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-P", "-c", _SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    # uvicorn's WebSocket protocol and its reloader's watchfiles, rich and pygments (which
    # structlog and httpx would import), httpx (webhooks and adapters have their own client)
    # and pydantic.v1 (which FastAPI imports to check for v1 models): ≈4, ≈1.4, ≈3, ≈3 and
    # ≈1.7 MB a worker would hold for nothing.
    assert done.stdout.strip() == "[]"
