"""Run the product's processes together: start, wait until each answers, stop all as one.

Ctrl-C (or SIGTERM) stops every process cleanly. If one process dies, the supervisor says which
and stops the rest, so a half-running product never looks healthy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress

from bot.ops.launch import POLL_SECONDS, STOP_GRACE_SECONDS, process_options
from bot.ops.probe import answers
from bot.ops.stack import Service

STARTUP_TIMEOUT_SECONDS = 300.0


async def _pump_output(name: str, stream: asyncio.StreamReader, width: int) -> None:
    prefix = f"{name:<{width}} | ".encode()
    while line := await stream.readline():
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.flush()


async def wait_until_answers(service: Service) -> None:
    while not await asyncio.to_thread(answers, service.health_url):  # a blocking probe
        await asyncio.sleep(POLL_SECONDS)
    print(f"{service.name} is up ({service.health_url})", flush=True)


def _signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


async def _stop_all(processes: dict[str, asyncio.subprocess.Process]) -> None:
    running = {n: p for n, p in processes.items() if p.returncode is None}
    for process in running.values():
        _signal_group(process, signal.SIGTERM)
    waits = {n: asyncio.create_task(p.wait()) for n, p in running.items()}
    if waits:
        await asyncio.wait(waits.values(), timeout=STOP_GRACE_SECONDS)
    for name, process in running.items():
        if process.returncode is None:
            print(f"{name} did not stop within {STOP_GRACE_SECONDS:.0f} s: killing it", flush=True)
            _signal_group(process, signal.SIGKILL)
            await process.wait()


async def supervise(services: list[Service], on_ready: Callable[[], None]) -> int:
    """Run until Ctrl-C (exit 0), or until one process exits (exit 1)."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    width = max(len(s.name) for s in services)
    processes: dict[str, asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task[None]] = []
    watched: set[asyncio.Task] = set()
    try:
        for service in services:
            # In its own session (process_options): Ctrl-C reaches us only; we stop the children.
            process = await asyncio.create_subprocess_exec(
                *service.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                **process_options(service),
            )
            processes[service.name] = process
            assert process.stdout is not None
            pumps.append(asyncio.create_task(_pump_output(service.name, process.stdout, width)))

        exits = {asyncio.create_task(p.wait()): name for name, p in processes.items()}
        stop_task = asyncio.create_task(stop_requested.wait())
        ready_task = asyncio.create_task(
            asyncio.wait_for(
                asyncio.gather(*(wait_until_answers(s) for s in services)),
                STARTUP_TIMEOUT_SECONDS,
            )
        )
        watched.update({*exits, stop_task, ready_task})
        while True:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if ready_task in done:
                watched.discard(ready_task)
                if ready_task.exception() is not None:
                    print(
                        f"Not every service answered within {STARTUP_TIMEOUT_SECONDS:.0f} s: "
                        "stopping.",
                        flush=True,
                    )
                    return 1
                on_ready()
                continue
            died = [exits[t] for t in done if t in exits]
            if died:
                name = died[0]
                print(
                    f"{name} exited with code {processes[name].returncode}: "
                    "stopping the other services.",
                    flush=True,
                )
                return 1
            print("Stopping all services ...", flush=True)
            return 0
    finally:
        for task in watched:
            task.cancel()
        await _stop_all(processes)
        for pump in pumps:
            with suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(pump, 2)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
