"""The one way a Service (bot/ops/stack.py) becomes a process, and the ways to stop it.

Each process runs in its own session (a signal to its group reaches its workers too, and Ctrl-C
in the terminal reaches only the parent), from the project root, with stdin closed. The
supervisor (`make run`) reads its output through a pipe; the local cluster and the tests' running
stack write it to `<log_dir>/<name>.log`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from bot.ops.probe import answers
from bot.ops.stack import Service
from bot.settings import PROJECT_ROOT

POLL_SECONDS = 0.5  # between two readiness probes
STOP_GRACE_SECONDS = 15.0  # SIGTERM, then SIGKILL after this long


class StartError(RuntimeError):
    """A service exited at start or did not answer in time; the message ends with its log."""


def process_options(service: Service, extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen / asyncio.create_subprocess_exec (besides the
    output, which the caller chooses)."""
    return {
        "env": {**service.env, **(extra_env or {})},
        "cwd": PROJECT_ROOT,
        "stdin": subprocess.DEVNULL,
        "start_new_session": True,
    }


def log_path(log_dir: Path, name: str) -> Path:
    return log_dir / f"{name}.log"


def launch(
    service: Service, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start the service in the background, appending its output to its log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with log_path(log_dir, service.name).open("ab") as log:  # the child has its own descriptor
        return subprocess.Popen(
            service.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            **process_options(service, extra_env),
        )


def start_services(
    services: Sequence[Service],
    log_dir: Path,
    processes: MutableMapping[str, subprocess.Popen],
    timeout: float,
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Launch each service (recorded in `processes` by name at once, so that the caller can stop
    them), then wait until every one answers its health URL, `timeout` seconds in all.

    Raises StartError, with the end of the log, for the first that exits or stays silent.
    """
    for service in services:
        processes[service.name] = launch(service, log_dir, extra_env)
    deadline = time.monotonic() + timeout
    for service in services:
        while not answers(service.health_url):
            if processes[service.name].poll() is not None:
                problem = "exited at start"
            elif time.monotonic() > deadline:
                problem = "did not answer in time"
            else:
                time.sleep(POLL_SECONDS)
                continue
            tail = log_tail(log_dir, service.name)
            raise StartError(f"{service.name} {problem}:\n{tail}")


def stop(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the process group; SIGKILL when it has not exited after `grace` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:  # already gone
        process.wait()


def read_log(log_dir: Path, name: str) -> str:
    path = log_path(log_dir, name)
    return path.read_text(errors="replace") if path.exists() else ""


def log_tail(log_dir: Path, name: str, lines: int = 40) -> str:
    return "\n".join(read_log(log_dir, name).splitlines()[-lines:])
