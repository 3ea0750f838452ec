"""Process figures from /proc (psutil is not among the pinned dependencies): CPU seconds and
peak resident memory (VmHWM) of a process and its children, and the machine's CPU use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    return parents


def tree(pid: int) -> list[int]:
    """The process and all its descendants (e.g. Sanic's worker processes)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def named(command: str) -> list[int]:
    """Processes whose command name is `command` (e.g. "postgres", "redis-server")."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def peak_rss_mib(pids: list[int]) -> float:
    """Sum of each process's peak resident set (VmHWM); forked workers share some pages, so
    for a tree this is an upper bound."""
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


@dataclass(frozen=True)
class MachineCpu:
    busy: float  # seconds of CPU time spent, all cores
    total: float

    @classmethod
    def now(cls) -> MachineCpu:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return cls((sum(fields) - idle) / CLOCK_TICKS, sum(fields) / CLOCK_TICKS)
