"""``simpul serve --workers N``: the parent checks and prepares once (``preflight``), then
becomes the workers' supervisor (``broker._supervise``, tested in ``test_supervise.py``); each
worker builds its own app. Where ``exec`` is not POSIX, uvicorn's supervisor runs in-process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from broker._http1 import ExchangeProtocol
from broker.cli import app


class _Started:
    closed = 0


_FACTORY = {
    "app": "broker.app:create_served_app",
    "factory": True,
    "host": "127.0.0.1",
    "port": 9124,
    "log_level": "info",
    "access_log": False,
    "ws": "none",
    "http": ExchangeProtocol,
}


@pytest.fixture
def served(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    import uvicorn

    import broker.runtime

    calls: list[dict[str, Any]] = []
    _Started.closed = 0

    def fake_preflight(settings: Any) -> None:
        _Started.closed += 1

    clean_env.setattr(broker.runtime, "preflight", fake_preflight)
    clean_env.setattr(
        uvicorn, "run", lambda asgi, **options: calls.append({"app": asgi, **options})
    )

    def fake_exec(path: str, argv: list[str]) -> None:
        calls.append({"exec": path, "argv": argv})
        raise SystemExit(0)  # os.execv never returns

    clean_env.setattr(os, "execv", fake_exec)
    clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
    clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
    return calls


class TestWorkers:
    @pytest.mark.parametrize(
        ("argv", "env", "expected"),
        [
            (["serve", "--workers", "3"], None, 3),
            (["serve"], "2", 2),
            (["serve", "--workers", "4"], "2", 4),  # the option wins over the environment
        ],
    )
    def test_several_workers_exec_the_supervisor(
        self,
        served: list[dict[str, Any]],
        clean_env: pytest.MonkeyPatch,
        argv: list[str],
        env: str | None,
        expected: int,
    ) -> None:
        if env is not None:
            clean_env.setenv("SIMPUL_WORKERS", env)
        result = CliRunner().invoke(app, [*argv, "--port", "9124"])
        assert result.exit_code == 0, result.output
        assert _Started.closed == 1  # prepared once, in the parent, before any worker
        assert served == [
            {
                "exec": sys.executable,
                "argv": [
                    sys.executable,
                    "-P",  # the working directory stays off sys.path
                    "-m",
                    "broker._supervise",
                    str(expected),
                    "127.0.0.1",
                    "9124",
                    "info",
                    "free",  # unpinned unless asked
                ],
            }
        ]

    @pytest.mark.parametrize(
        ("argv", "env", "placement"),
        [
            (["--pin-workers"], None, "pinned"),
            ([], "true", "pinned"),
            (["--no-pin-workers"], "true", "free"),  # the option wins over the environment
            ([], "false", "free"),
        ],
    )
    def test_the_supervisor_is_told_whether_to_pin_the_workers(
        self,
        served: list[dict[str, Any]],
        clean_env: pytest.MonkeyPatch,
        argv: list[str],
        env: str | None,
        placement: str,
    ) -> None:
        import broker._supervise

        clean_env.setattr(broker._supervise, "can_pin", lambda: True)
        if env is not None:
            clean_env.setenv("SIMPUL_PIN_WORKERS", env)
        result = CliRunner().invoke(app, ["serve", "--workers", "2", *argv, "--port", "9124"])
        assert result.exit_code == 0, result.output
        assert served[0]["argv"][-1] == placement

    @pytest.mark.parametrize(
        ("can_exec", "can_pin"),
        [(True, False), (False, True)],  # no sched_setaffinity; no supervisor of our own
    )
    def test_pinning_is_refused_where_the_platform_cannot_pin(
        self,
        served: list[dict[str, Any]],
        clean_env: pytest.MonkeyPatch,
        can_exec: bool,
        can_pin: bool,
    ) -> None:
        import broker._supervise
        import broker.cli

        clean_env.setattr(broker._supervise, "can_pin", lambda: can_pin)
        clean_env.setattr(broker.cli, "_CAN_EXEC", can_exec)
        result = CliRunner().invoke(app, ["serve", "--workers", "2", "--pin-workers"])
        assert result.exit_code == 2
        assert "pinning workers to CPUs needs Linux" in result.stderr
        assert served == []
        assert _Started.closed == 0  # refused before anything was prepared

    def test_one_worker_is_not_pinned_and_says_so(self, served: list[dict[str, Any]]) -> None:
        result = CliRunner().invoke(app, ["serve", "--pin-workers", "--port", "9125"])
        assert result.exit_code == 0, result.output
        assert "one runs unpinned" in result.stderr
        assert len(served) == 1
        assert "exec" not in served[0]

    def test_without_exec_the_workers_are_supervised_here(
        self, served: list[dict[str, Any]], clean_env: pytest.MonkeyPatch
    ) -> None:
        import broker.cli

        clean_env.setattr(broker.cli, "_CAN_EXEC", False)
        result = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", "9124"])
        assert result.exit_code == 0, result.output
        assert served == [_FACTORY | {"workers": 2}]

    def test_one_worker_serves_in_this_process(self, served: list[dict[str, Any]]) -> None:
        result = CliRunner().invoke(app, ["serve", "--port", "9125"])
        assert result.exit_code == 0, result.output
        assert _Started.closed == 1
        assert len(served) == 1
        assert served[0]["port"] == 9125
        assert not isinstance(served[0]["app"], str)  # the app itself, built here
        assert "workers" not in served[0]
        assert served[0]["ws"] == "none"

    @pytest.mark.parametrize("workers", ["0", "65"])
    def test_out_of_range_is_refused(self, served: list[dict[str, Any]], workers: str) -> None:
        result = CliRunner().invoke(app, ["serve", "--workers", workers])
        assert result.exit_code == 2
        assert served == []
