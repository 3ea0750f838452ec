"""The internet-facing gateway runs in its own environment (.venv-gateway, from
requirements-gateway.lock) with the current aiohttp, not in the Rasa environment with Rasa's
aiohttp 3.9 (issue 14, row 8)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.ops.stack import GATEWAY_VENV
from bot.settings import PROJECT_ROOT
from tests.support.running_stack import RunningStack

pytestmark = pytest.mark.e2e
# The oldest release that fixes every advisory the README's table lists for aiohttp.
FIXED_AIOHTTP = (3, 13, 4)


def locked_version(package: str) -> str:
    lock = (PROJECT_ROOT / "requirements-gateway.lock").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)$", lock, re.MULTILINE | re.IGNORECASE)
    assert match, f"{package} is not pinned in requirements-gateway.lock"
    return match.group(1)


def test_the_gateway_process_runs_the_locked_current_aiohttp_with_its_c_parser(
    tmp_path: Path,
) -> None:
    stack = RunningStack.on_free_ports(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    stack.start("gateway")  # answers /healthz (503 without Rasa): it imported everything it needs
    try:
        pid = stack.processes["gateway"].pid
        interpreter = Path(f"/proc/{pid}/exe").resolve()
        assert re.fullmatch(r"python3\.11", interpreter.name), interpreter
        # What the running process has loaded, not what an interpreter would import.
        maps = Path(f"/proc/{pid}/maps").read_text()
        parsers = {line.split()[-1] for line in maps.splitlines() if "aiohttp/_http_parser" in line}
        assert len(parsers) == 1, parsers  # the C parser, not the pure-Python one
        site_packages = Path(parsers.pop()).parent.parent
        assert site_packages.is_relative_to(GATEWAY_VENV), site_packages
        installed = [p.name for p in site_packages.glob("aiohttp-*.dist-info")]
        assert installed == [f"aiohttp-{locked_version('aiohttp')}.dist-info"]
        version = tuple(int(part) for part in locked_version("aiohttp").split(".")[:3])
        assert version >= FIXED_AIOHTTP
    finally:
        stack.stop()
