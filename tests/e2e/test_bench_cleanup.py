"""The load benchmark stops everything it started when it is stopped itself (issue #20):
SIGTERM, as `timeout` sends, used to leave two Rasa replicas and the action server running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bot.settings import PROJECT_ROOT


def processes_marked(marker: str) -> list[int]:
    """Processes (any parent, any process group) whose environment carries the marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if f"BENCH_CLEANUP_MARK={marker}".encode() in environment.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_sigterm_stops_the_whole_cluster(trained_model: Path) -> None:
    marker = uuid.uuid4().hex
    bench = subprocess.Popen(
        [sys.executable, "bench/load.py", "--quick", "--only", "main"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_CLEANUP_MARK": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert bench.stdout is not None
    deadline = time.monotonic() + 180
    for line in bench.stdout:  # wait until its processes are being started
        if "starting" in line or time.monotonic() > deadline:
            break
    time.sleep(5)
    started = processes_marked(marker)
    assert len(started) > 2, "the bench should have started its cluster"
    bench.send_signal(signal.SIGTERM)
    bench.communicate(timeout=120)
    deadline = time.monotonic() + 30
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    orphans = processes_marked(marker)
    for pid in orphans:  # never leave them to the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert orphans == []
