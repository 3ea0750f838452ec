"""Start the real processes (action server, Rasa, gateway) on free ports for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.ops.stack import Service, services
from bot.settings import Settings

STARTUP_TIMEOUT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, with an error status
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class RunningStack:
    settings: Settings
    model: Path
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Extra environment for every process started (e.g. WECHAT_* settings for the gateway).
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, var_dir: Path, database_url: str, model: Path) -> RunningStack:
        settings = Settings(
            var_dir=var_dir,
            database_url=database_url,
            gateway_port=free_port(),
            rasa_port=free_port(),
            action_port=free_port(),
            rasa_auth_token="test-token",
            session_secret="test-session-secret",
            # Staff answer at any hour in tests; "nobody online" still sends users to a ticket.
            handoff_hours="always",
        )
        return cls(settings, model, var_dir / "logs")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    def service(self, name: str) -> Service:
        return next(s for s in services(self.settings, self.model) if s.name == name)

    def start(self, *names: str) -> None:
        names = names or ("actions", "rasa", "gateway")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            spec = self.service(name)
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept open by the child
            self.processes[name] = subprocess.Popen(
                spec.argv, env={**spec.env, **self.extra_env}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        for name in names:
            spec = self.service(name)
            while not answers(spec.health_url):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited at start:\n{self.log_tail(name)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer in time:\n{self.log_tail(name)}")
                time.sleep(0.5)

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )
