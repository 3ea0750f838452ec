"""`bench/startup.py`: one Rasa replica's time from start to first answer, and its peak memory.

It starts the action server and PostgreSQL/Redis-backed Rasa replicas as `bench/load.py` does
(bot/ops/cluster.py, a fresh schema of `ipbot_bench`, dropped afterwards) and, for every variant
(extra environment for the replica) in turn, `--repeat` times:

* seconds from starting the process until `/version` answers (the model is loaded), and until
  the first answer to "你好" (TensorFlow has built its prediction graphs);
* peak RSS (VmHWM, the process and its workers) after the first answer and after `--messages`
  more scripted messages, one after the other.

    .venv/bin/python bench/startup.py                        # as configured against untrimmed
    .venv/bin/python bench/startup.py --variant arena2:MALLOC_ARENA_MAX=2 --repeat 2

The default variants are the replica as `bot run` / `run-cluster` start it, and the same with
RASA_RUNTIME_TRIMS=0 (bot/rasa/server.py's trims off: what it was before issue 20).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import procstat
from load import BENCH_DATABASE, REDIS_URL, SCRIPTS, Bench

from bot.ops import launch
from bot.ops.cluster import ClusterConfig, LocalCluster, services_cluster
from bot.settings import Settings

DEFAULT_VARIANTS = ("untrimmed:RASA_RUNTIME_TRIMS=0", "trimmed:")
START_TIMEOUT = 300.0


def parse_variant(raw: str) -> tuple[str, dict[str, str]]:
    """ "name:K=V,K=V" → (name, env)."""
    name, _, assignments = raw.partition(":")
    env = {}
    for item in filter(None, assignments.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE")
        env[key] = value
    return name, env


async def first_answer(url: str, started: float) -> tuple[float, float]:
    """Seconds until /version answers and until "你好" gets a text answer."""
    listening = 0.0
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < START_TIMEOUT:
            try:
                if not listening:
                    async with http.get(url + "/version") as response:
                        if response.status == 200:
                            listening = time.monotonic() - started
                        else:
                            raise aiohttp.ClientError(str(response.status))
                async with http.post(
                    url + "/webhooks/rest/webhook",
                    json={"sender": f"start-{uuid.uuid4().hex}", "message": "你好"},
                ) as response:
                    body = await response.json() if response.status == 200 else []
                if any(m.get("text") for m in body):
                    return listening, time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"no answer from {url} within {START_TIMEOUT:.0f} s")


async def more_messages(url: str, count: int) -> None:
    turns = [q for script in SCRIPTS for q, _ in script]
    async with aiohttp.ClientSession() as http:
        sender = f"bench-{uuid.uuid4().hex}"
        for i in range(count):
            if i % 6 == 0:
                sender = f"bench-{uuid.uuid4().hex}"
            async with http.post(
                url + "/webhooks/rest/webhook",
                json={"sender": sender, "message": turns[i % len(turns)]},
            ) as response:
                await response.read()


class Replica:
    """The action server, up for the whole run, and one Rasa replica's command to time."""

    def __init__(self, bench: Bench) -> None:
        from tests.support.running_stack import free_port

        settings = Settings(
            var_dir=bench.work_dir,
            database_url=bench.database_url,
            rasa_auth_token=uuid.uuid4().hex,
            session_secret=uuid.uuid4().hex,
            redis_url=REDIS_URL,
        )
        self.config = ClusterConfig(
            database_url=bench.database_url,
            redis_url=REDIS_URL,
            lock_key_prefix=f"bench{uuid.uuid4().hex[:6]}",
            rasa_ports=(free_port(),),
            gateway_ports=(),
            action_port=free_port(),
        )
        topology = services_cluster(settings, bench.model, self.config)
        self.rasa = next(s for s in topology if s.name == "rasa-1")
        self.log_dir = bench.work_dir / "logs" / "startup"
        self.cluster = LocalCluster([s for s in topology if s.name == "actions"], self.log_dir)

    def measure(self, env: dict[str, str], messages: int) -> dict[str, float]:
        url = self.config.rasa_urls("127.0.0.1")[0]
        started = time.monotonic()
        process = subprocess.Popen(
            self.rasa.argv,
            env={**self.rasa.env, **env},
            stdout=(self.log_dir / "rasa-timed.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            listening, answered = asyncio.run(first_answer(url, started))
            rss_first = procstat.peak_rss_mib(procstat.tree(process.pid))
            asyncio.run(more_messages(url, messages))
            rss_after = procstat.peak_rss_mib(procstat.tree(process.pid))
        finally:
            launch.stop(process)
        return {
            "listening_s": listening,
            "first_answer_s": answered,
            "peak_rss_first_mib": rss_first,
            "peak_rss_mib": rss_after,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variant",
        action="append",
        help='"name:KEY=VALUE,KEY=VALUE": environment for the replica (repeatable)',
    )
    parser.add_argument("--repeat", type=int, default=1, help="starts per variant, alternating")
    parser.add_argument("--messages", type=int, default=30, help="messages after the first")
    parser.add_argument("--database", default=BENCH_DATABASE)
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant or DEFAULT_VARIANTS]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop what we started
    bench = Bench(argparse.Namespace(database=args.database, profile=False))
    bench.prepare_database()
    replica = Replica(bench)
    replica.log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    try:
        replica.cluster.start()
        for round_ in range(args.repeat):
            for name, env in variants:
                figures = replica.measure(env, args.messages)
                results[name].append(figures)
                print(
                    f"   {name:<16} round {round_ + 1}: listening {figures['listening_s']:5.1f} s,"
                    f" first answer {figures['first_answer_s']:5.1f} s, peak RSS"
                    f" {figures['peak_rss_first_mib']:5.0f} MiB, after {args.messages} messages"
                    f" {figures['peak_rss_mib']:5.0f} MiB",
                    flush=True,
                )
    finally:
        replica.cluster.stop()
        bench.drop_database()
    print(
        f"\n=== One Rasa replica (median of {args.repeat}); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'variant':<16} {'listening':>10} {'first answer':>13} {'peak RSS':>10}  environment")
    for name, env in variants:
        rows = results[name]
        print(
            f"{name:<16} {median(r['listening_s'] for r in rows):>9.1f}s"
            f" {median(r['first_answer_s'] for r in rows):>12.1f}s"
            f" {median(r['peak_rss_mib'] for r in rows):>6.0f} MiB  "
            + (",".join(f"{k}={v}" for k, v in env.items()) or "-")
        )
    print("targets: first answer ≤ 30 s, peak RSS ≤ 1024 MiB per replica")
    return 0


if __name__ == "__main__":
    sys.exit(main())
