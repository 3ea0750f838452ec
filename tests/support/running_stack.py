"""Start the real processes (action server, Rasa, gateway) on free ports for end-to-end tests.

Starting, probing and stopping are bot/ops/launch.py's and bot/ops/probe.py's (as for the local
cluster); this is the test-side wrapper: free ports, test settings, restarts with extra env.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ops import launch
from bot.ops.stack import Service, services
from bot.settings import Settings

STARTUP_TIMEOUT_SECONDS = 240
# Every browser and client of the suite comes from 127.0.0.1 and shares one gateway for the
# session: the per-address limits (tested on their own in tests/unit/webchat) are opened wide.
NO_ADDRESS_LIMITS: dict[str, Any] = {  # Settings fields (typed loosely for ** use)
    "address_new_conversations": 1_000_000,
    "address_handoffs": 1_000_000,
    "address_tickets": 1_000_000,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            **NO_ADDRESS_LIMITS,
        )
        return cls(settings, model, var_dir / "logs")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    def service(self, name: str) -> Service:
        return next(s for s in services(self.settings, self.model) if s.name == name)

    def start(self, *names: str) -> None:
        """Start (all three by default) and wait until each answers; RuntimeError with its log
        (bot.ops.launch.StartError) if one does not."""
        started = [self.service(name) for name in names or ("actions", "rasa", "gateway")]
        launch.start_services(
            started, self.log_dir, self.processes, STARTUP_TIMEOUT_SECONDS, self.extra_env
        )

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is not None:
                launch.stop(process)

    def log_tail(self, name: str, lines: int = 40) -> str:
        return launch.log_tail(self.log_dir, name, lines)
