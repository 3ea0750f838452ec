"""`python -m bot run`'s supervisor, with small stand-in HTTP processes."""

from __future__ import annotations

import os
import signal
import sys

from bot.ops.probe import answers
from bot.ops.stack import Service
from bot.ops.supervisor import supervise
from tests.support.running_stack import free_port

SERVER = """
import http.server, sys, threading
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.BaseHTTPRequestHandler)
lifetime = float(sys.argv[2])
if lifetime:
    threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
sys.exit(3)
"""


def http_service(name: str, lifetime: float = 0) -> Service:
    port = free_port()
    return Service(
        name,
        [sys.executable, "-c", SERVER, str(port), str(lifetime)],
        dict(os.environ),
        f"http://127.0.0.1:{port}/",
    )


async def test_one_service_dying_stops_the_others(capsys) -> None:
    steady, short_lived = http_service("steady"), http_service("flaky", lifetime=3)
    ready = []
    code = await supervise([steady, short_lived], lambda: ready.append(True))
    assert code == 1 and ready == [True]
    assert "flaky exited with code 3: stopping the other services." in capsys.readouterr().out
    assert not answers(steady.health_url)


async def test_ctrl_c_stops_everything_cleanly() -> None:
    services = [http_service("one"), http_service("two")]
    code = await supervise(services, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert code == 0
    assert not any(answers(s.health_url) for s in services)
