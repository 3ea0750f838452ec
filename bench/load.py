"""`bench/load.py`: simulated citizens against the scale-out topology; prints the figures.

It starts what it measures itself (bot/ops/cluster.py, on free ports, in a fresh PostgreSQL schema
of the database `ipbot_bench`, dropped afterwards) and, for every configuration:

* N citizens (default 50 and 200) each hold a scripted conversation of 4-6 turns over the gateway
  websocket (/ws, with their cookie), pausing THINK seconds between turns (reading, typing);
  latency = from sending a message to its answer's "typing off" frame;
* the same load straight to one Rasa's REST channel: the baseline for the gateway's overhead;
* a saturation run (no pauses) for throughput: one Rasa replica against two;
* lost messages: each message must be acknowledged, stored (checked in the database: status
  `answered`) and answered; `busy` apologies (Rasa slower than RASA_TIMEOUT) are counted apart;
* CPU seconds per process during each run (what limits it) and the peak RSS of each process;
* the two Rasa knobs: TF thread counts and SANIC_WORKERS (with the Redis lock store).

    .venv/bin/python bench/load.py                 # everything (~15 min on 2 cores)
    .venv/bin/python bench/load.py --quick         # smoke run: 20 citizens, one replica
    .venv/bin/python bench/load.py --citizens 50 --skip-knobs
    .venv/bin/python bench/load.py --profile       # cProfile of one Rasa replica and a gateway

The figures are written to results/load/latest.json as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import procstat
from sqlalchemy import text

from bot.db.engine import make_engine, session_factory
from bot.db.migrate import upgrade
from bot.kb.seed import seed_if_empty
from bot.ops import cluster
from bot.ops.cluster import ClusterConfig, LocalCluster, ensure_database, services_cluster
from bot.rasa.model import ensure_trained
from bot.settings import PROJECT_ROOT, Settings

BENCH_DATABASE = "postgresql://postgres@127.0.0.1:5432/ipbot_bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
MESSAGE_TIMEOUT = 60.0  # the client gives up on an answer (counted lost) after this
OUT = PROJECT_ROOT / "results" / "load"

# Scripted conversations (questions like tests/nlu_holdout.yml's, not copied from it), each turn
# with a fragment its answer must contain (an answer without it is counted "off-script").
SCRIPTS: list[list[tuple[str, str]]] = [
    [
        ("你好", "宁波知识产权公共服务助手"),
        ("商标受理窗口在哪", "商标受理窗口"),
        ("网上申请商标一个类别多少钱", "270元"),
        ("窗口能帮忙办商标转让吗", "商标"),
        ("谢谢", ""),
    ],
    [
        ("鄞州有品牌指导站吗", "鄞州区"),
        ("慈溪那边的商标品牌指导站在哪里", "慈溪市"),
        ("北仑区有没有品牌指导站", "北仑区"),
        ("好的，谢谢", ""),
    ],
    [
        ("知识产权方面有什么保险", "保险"),
        ("专利执行险主要赔什么", "专利执行保险"),
        ("海外侵权责任险怎么买", "海外"),
        ("有没有商标方面的保险", "商标"),
        ("谢谢你", ""),
    ],
    [
        ("最多跑一地是什么意思", "最多跑一地"),
        ("知识产权综合体都能办什么", "综合体"),
        ("浙江知识产权在线的网址是多少", "浙江知识产权在线"),
        ("网上能一站式办吗", ""),
        ("再见", ""),
    ],
    [
        ("专利预审怎么申请", "预审"),
        ("预审快速通道一般多久出结果", "预审"),
        ("外观设计专利可以走快速预审吗", ""),
        ("我们公司在奉化，能用保护中心的预审吗", ""),
        ("专利预审收费吗", ""),
        ("明白了，谢谢", ""),
    ],
    [
        ("您好", "宁波知识产权公共服务助手"),
        ("海曙有商标品牌指导站吗", "海曙区"),
        ("商标注册要多少钱", "元"),
        ("专利快审通道怎么申请", "预审"),
        ("知识产权保险有哪些", "保险"),
        ("拜拜", ""),
    ],
]


# ---- measurements -------------------------------------------------------------------------------


@dataclass
class Sample:
    latency: float
    client_id: str = ""
    acked: bool = False
    answered: bool = False  # at least one bot message, no error
    error: str = ""  # an error frame's code, "http 5xx", "timeout" …
    on_script: bool = True
    queued: bool = False  # told "正在排队，请稍候" (bot/rasa/queue.py) before the answer


@dataclass
class RunResult:
    label: str
    citizens: int
    think: tuple[float, float]
    samples: list[Sample] = field(default_factory=list)
    duration: float = 0.0
    # Filled by the database check (gateway runs): client ids stored with status `answered`.
    stored_answered: int | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group

    @property
    def sent(self) -> int:
        return len(self.samples)

    def latencies(self) -> list[float]:
        return sorted(s.latency for s in self.samples if s.answered)

    def percentile(self, q: float) -> float:
        values = self.latencies()
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]

    @property
    def throughput(self) -> float:
        return sum(s.answered for s in self.samples) / self.duration if self.duration else 0.0

    def errors(self) -> Counter[str]:
        return Counter(s.error for s in self.samples if s.error)

    @property
    def lost(self) -> int:
        """Sent but not acknowledged, not stored as answered, or never answered at all (an
        apology such as `busy` is an answer: the message is stored and the user told)."""
        unanswered = sum(
            1 for s in self.samples if not s.answered and s.error in ("", "timeout", "closed")
        )
        unacked = sum(1 for s in self.samples if s.client_id and not s.acked)
        if self.stored_answered is None:
            return max(unanswered, unacked)
        answered_here = sum(1 for s in self.samples if s.answered)
        return max(unanswered, unacked, answered_here - self.stored_answered)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "citizens": self.citizens,
            "think_seconds": list(self.think),
            "sent": self.sent,
            "answered": sum(s.answered for s in self.samples),
            "p50_ms": round(self.percentile(50) * 1000, 1),
            "p95_ms": round(self.percentile(95) * 1000, 1),
            "p99_ms": round(self.percentile(99) * 1000, 1),
            "throughput_per_s": round(self.throughput, 2),
            "errors": dict(self.errors()),
            "queued": sum(s.queued for s in self.samples),
            "lost": self.lost,
            "off_script": sum(not s.on_script for s in self.samples if s.answered),
            "stored_answered": self.stored_answered,
            "duration_s": round(self.duration, 1),
            "cpu_seconds": {k: round(v, 1) for k, v in self.cpu.items()},
        }


async def _pause(think: tuple[float, float]) -> None:
    if think[1] > 0:
        await asyncio.sleep(random.uniform(*think))


async def gateway_citizen(
    http: aiohttp.ClientSession,
    url: str,
    script: list[tuple[str, str]],
    run: RunResult,
    ready: asyncio.Event,
) -> None:
    """One browser: page (cookie), websocket, the script turn by turn."""
    async with http.get(url + "/") as page:
        await page.read()
    async with http.ws_connect(url + "/ws", heartbeat=None, max_msg_size=0) as ws:
        history = await asyncio.wait_for(ws.receive_json(), MESSAGE_TIMEOUT)
        assert history["type"] == "history", history
        await ready.wait()
        await _pause((0.0, run.think[1]))  # citizens do not all start in the same instant
        for question, expected in script:
            sample = Sample(0.0, client_id=uuid.uuid4().hex)
            started = time.perf_counter()
            await ws.send_json({"type": "message", "id": sample.client_id, "text": question})
            texts: list[str] = []
            deadline = started + MESSAGE_TIMEOUT
            try:
                while True:
                    # One deadline for the whole answer: the gateway's heartbeat pings restart
                    # receive()'s own timeout, so a lost answer would hang the citizen forever.
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        raise asyncio.TimeoutError
                    frame = await asyncio.wait_for(ws.receive_json(), remaining)
                    kind = frame.get("type")
                    if kind == "ack" and frame.get("client_id") == sample.client_id:
                        sample.acked = True
                    elif kind == "bot":
                        texts.append(frame.get("text", ""))
                    elif kind == "error":
                        sample.error = frame.get("code", "error")
                        if frame.get("client_id") == sample.client_id and not sample.acked:
                            break  # refused before storing (rate limit, database): no typing
                    elif kind == "typing" and frame.get("on") is False and "who" not in frame:
                        break
                    elif kind == "typing" and frame.get("text"):
                        sample.queued = True
            except (asyncio.TimeoutError, TypeError, aiohttp.ClientError):
                sample.error = sample.error or "timeout"
            sample.latency = time.perf_counter() - started
            sample.answered = bool(texts) and not sample.error
            sample.on_script = expected in "\n".join(texts)
            run.samples.append(sample)
            await _pause(run.think)


async def rasa_citizen(
    http: aiohttp.ClientSession,
    url: str,
    script: list[tuple[str, str]],
    run: RunResult,
    ready: asyncio.Event,
) -> None:
    """The same conversation posted straight to Rasa's REST channel (no gateway)."""
    sender = f"bench-{uuid.uuid4().hex}"
    await ready.wait()
    await _pause((0.0, run.think[1]))
    for question, expected in script:
        sample = Sample(0.0)
        started = time.perf_counter()
        try:
            async with http.post(
                url + "/webhooks/rest/webhook",
                json={"sender": sender, "message": question},
                timeout=aiohttp.ClientTimeout(total=MESSAGE_TIMEOUT),
            ) as response:
                body = await response.json() if response.status == 200 else None
                if response.status != 200:
                    sample.error = f"http {response.status}"
        except (asyncio.TimeoutError, aiohttp.ClientError):
            sample.error, body = "timeout", None
        sample.latency = time.perf_counter() - started
        texts = [m.get("text", "") for m in body or [] if isinstance(m, dict)]
        sample.answered = bool(body) and not sample.error
        sample.on_script = expected in "\n".join(texts)
        run.samples.append(sample)
        await _pause(run.think)


class Topology:
    """A running configuration: its processes and what to call."""

    def __init__(self, name: str, cluster: LocalCluster, config: ClusterConfig) -> None:
        self.name = name
        self.cluster = cluster
        self.config = config

    @property
    def gateways(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.config.gateway_ports]

    @property
    def rasa(self) -> str:
        return self.config.rasa_urls("127.0.0.1")[0]

    def groups(self) -> dict[str, list[int]]:
        """Process groups whose CPU and memory are reported: ours, PostgreSQL, Redis."""
        groups = {name: procstat.tree(self.cluster.pid(name)) for name in self.cluster.processes}
        groups["postgresql"] = procstat.named("postgres")
        groups["redis"] = procstat.named("redis-server")
        return groups


async def run_load(
    topology: Topology,
    label: str,
    target: str,
    citizens: int,
    think: tuple[float, float],
    database_url: str,
    rounds: int = 1,
) -> RunResult:
    """`citizens` scripted conversations at once (each script `rounds` times), against the
    gateways or straight to the Rasa replicas."""
    run = RunResult(label, citizens, think)
    ready = asyncio.Event()
    scripts = [SCRIPTS[i % len(SCRIPTS)] * rounds for i in range(citizens)]
    rasa_urls = topology.config.rasa_urls("127.0.0.1")
    connector = aiohttp.TCPConnector(limit=0)
    sessions = [
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector, connector_owner=False
        )
        for _ in range(citizens)
    ]
    try:
        if target == "gateway":
            gateways = topology.gateways
            tasks = [
                asyncio.create_task(
                    gateway_citizen(s, gateways[i % len(gateways)], scripts[i], run, ready)
                )
                for i, s in enumerate(sessions)
            ]
            await asyncio.sleep(min(10.0, 0.05 * citizens))  # let the sockets open first
        else:
            tasks = [
                asyncio.create_task(
                    rasa_citizen(s, rasa_urls[i % len(rasa_urls)], scripts[i], run, ready)
                )
                for i, s in enumerate(sessions)
            ]
        groups = topology.groups()
        cpu_before = {name: procstat.cpu_seconds(pids) for name, pids in groups.items()}
        machine_before = procstat.MachineCpu.now()
        own_before = procstat.cpu_seconds([os.getpid()])
        started = time.perf_counter()
        ready.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        run.duration = time.perf_counter() - started
        machine = procstat.MachineCpu.now()
        run.cpu = {
            name: procstat.cpu_seconds(pids) - cpu_before[name] for name, pids in groups.items()
        }
        run.cpu["bench client"] = procstat.cpu_seconds([os.getpid()]) - own_before
        run.cpu["everything else"] = max(
            0.0, machine.busy - machine_before.busy - sum(run.cpu.values())
        )
        run.cpu["idle"] = (machine.total - machine_before.total) - (
            machine.busy - machine_before.busy
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            print(f"  {len(failures)} citizens failed to connect: {failures[0]!r}", flush=True)
    finally:
        for session in sessions:
            await session.close()
        await connector.close()
    if target == "gateway":
        run.stored_answered = stored_and_answered(database_url, run)
    return run


def rasa_cpu_per_message(run: RunResult) -> float:
    """CPU seconds the Rasa replicas spent per answered message: unlike throughput, hardly
    disturbed by other processes on the machine."""
    answered = sum(s.answered for s in run.samples)
    rasa = sum(v for k, v in run.cpu.items() if k.startswith("rasa"))
    return rasa / answered if answered else float("nan")


def stored_and_answered(database_url: str, run: RunResult) -> int:
    """How many of the run's messages the database holds with status `answered`."""
    ids = [s.client_id for s in run.samples]
    with session_factory(database_url)() as session:
        rows = session.execute(
            text(
                "SELECT count(*) FROM messages WHERE role = 'user' AND status = 'answered'"
                " AND client_message_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).scalar_one()
    return int(rows)


# ---- configurations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    tf_intra: int = cluster.DEFAULT_TF_INTRA_THREADS
    tf_inter: int = cluster.DEFAULT_TF_INTER_THREADS
    rasa_workers: int = cluster.DEFAULT_RASA_WORKERS
    replicas: int = 1

    def __str__(self) -> str:
        tf = "TF threads unset" if self.tf_intra == 0 else f"TF {self.tf_intra}/{self.tf_inter}"
        replicas = f"{self.replicas} replicas × " if self.replicas > 1 else ""
        return f"{replicas}{tf}, SANIC_WORKERS={self.rasa_workers}"


# TF intra/inter-op threads (0: TensorFlow decides) and Sanic workers per replica; the last row
# puts the same two processes as SANIC_WORKERS=2 into two replicas instead.
KNOB_SETTINGS = (
    Knobs(1, 1, 1),
    Knobs(2, 2, 1),
    Knobs(0, 0, 1),
    Knobs(1, 1, 2),
    Knobs(1, 1, 1, replicas=2),
)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model = ensure_trained()
        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        self.database_url = f"{args.database}?options=-csearch_path%3D{self.schema}"
        self.results: list[dict[str, Any]] = []
        self.memory: dict[str, dict[str, float]] = {}
        self.work_dir = OUT / time.strftime("%Y%m%d-%H%M%S")
        self.running: list[Topology] = []

    def prepare_database(self) -> None:
        ensure_database(self.args.database)
        engine = make_engine(self.args.database)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        engine.dispose()
        upgrade(self.database_url)
        with session_factory(self.database_url)() as session:
            seed_if_empty(session)

    def drop_database(self) -> None:
        session_factory(self.database_url).kw["bind"].dispose()
        engine = make_engine(self.args.database)
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        engine.dispose()

    def start(
        self, name: str, replicas: int, gateways: int, knobs: Knobs, **gateway: Any
    ) -> Topology:
        """`gateway`: more Settings for the gateways (e.g. rasa_concurrency=0: no queue)."""
        from tests.support.running_stack import NO_ADDRESS_LIMITS, free_port

        settings = Settings(
            var_dir=self.work_dir,
            database_url=self.database_url,
            rasa_auth_token=uuid.uuid4().hex,
            session_secret=uuid.uuid4().hex,
            handoff_hours="always",
            chat_rate_limit=1000,  # the bench measures capacity, not the flood limit
            **NO_ADDRESS_LIMITS,  # every simulated citizen comes from 127.0.0.1
            redis_url=REDIS_URL,
            redis_namespace=f"bench{uuid.uuid4().hex[:6]}",
            **gateway,
        )
        config = ClusterConfig(
            database_url=self.database_url,
            redis_url=REDIS_URL,
            lock_key_prefix=f"bench{uuid.uuid4().hex[:6]}",
            rasa_ports=tuple(free_port() for _ in range(replicas)),
            gateway_ports=tuple(free_port() for _ in range(gateways)),
            action_port=free_port(),
            tf_intra_threads=knobs.tf_intra,
            tf_inter_threads=knobs.tf_inter,
            rasa_workers=knobs.rasa_workers,
        )
        topology = services_cluster(settings, self.model, config)
        if self.args.profile and name == "profile":
            topology = [profiled(s, self.work_dir) for s in topology]
        if gateways == 0:
            topology = [s for s in topology if not s.name.startswith("gateway")]
        processes = LocalCluster(topology, self.work_dir / "logs" / name.replace(" ", "_"))
        print(f"\n== {name}: starting {', '.join(s.name for s in topology)} ...", flush=True)
        started = time.monotonic()
        running = Topology(name, processes, config)
        self.running.append(running)
        processes.start()
        print(f"   up in {time.monotonic() - started:.0f} s", flush=True)
        return running

    def stop(self, topology: Topology) -> None:
        self.memory[topology.name] = {
            name: round(procstat.peak_rss_mib(pids), 1)
            for name, pids in topology.groups().items()
            if name not in ("postgresql", "redis")
        }
        topology.cluster.stop()
        self.running.remove(topology)

    async def warm_up(self, topology: Topology) -> None:
        """Each replica's first messages are slow (TensorFlow builds its graphs): not measured."""
        async with aiohttp.ClientSession() as http:
            for url in topology.config.rasa_urls("127.0.0.1"):
                for question, _ in SCRIPTS[0] + SCRIPTS[1]:
                    async with http.post(
                        url + "/webhooks/rest/webhook",
                        json={"sender": f"warm-{uuid.uuid4().hex}", "message": question},
                    ) as response:
                        await response.read()

    async def measure(
        self,
        topology: Topology,
        label: str,
        target: str,
        citizens: int,
        think: tuple[float, float],
        rounds: int = 1,
    ) -> RunResult:
        run = await run_load(topology, label, target, citizens, think, self.database_url, rounds)
        summary = {"config": topology.name, "target": target, **run.summary()}
        self.results.append(summary)
        print(
            f"   {label:<44} p50 {summary['p50_ms']:>7.0f} ms  p95 {summary['p95_ms']:>7.0f} ms"
            f"  {summary['throughput_per_s']:>6.1f} msg/s  errors {summary['errors'] or 0}"
            f"  lost {summary['lost']}",
            flush=True,
        )
        return run


def profiled(service: Any, work_dir: Path) -> Any:
    """Run a Rasa replica or a gateway under cProfile (main-thread CPU time, bench/cpu_profile.py),
    written when it stops."""
    if not (service.name.startswith("rasa") or service.name.startswith("gateway")):
        return service
    out = work_dir / f"{service.name}.prof"
    module_args = service.argv[2:]  # after "python -m"
    argv = [
        service.argv[0],
        str(Path(__file__).with_name("cpu_profile.py")),
        str(out),
        *module_args,
    ]
    return replace(service, argv=argv)


def print_profile(path: Path, limit: int = 18) -> None:
    import pstats

    if not path.exists():
        print(f"   (no profile written at {path})")
        return
    print(f"\n-- {path.name}: top functions by own time")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(limit)
    print(f"-- {path.name}: by cumulative time, our code and the libraries' entry points")
    stats.sort_stats("cumulative").print_stats(
        r"bot/|rasa/core|rasa/nlu|rasa/engine|sqlalchemy/orm/session", limit
    )


# ---- the run ----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    bench = Bench(args)
    bench.prepare_database()
    think = (args.think_min, args.think_max)
    saturation = (0.0, 0.0)
    citizens = [20] if args.quick else args.citizens
    sat_citizens = 20 if args.quick else args.saturation_citizens
    ratio: dict[int, float] = {}
    overhead: dict[str, float] = {}  # gateway p50 / Rasa p50 - 1, by load
    knob_rows: list[tuple[Knobs, RunResult, RunResult]] = []
    overload: list[tuple[str, RunResult]] = []
    try:
        if args.profile:
            topology = bench.start("profile", 1, 1, Knobs())
            await bench.warm_up(topology)
            profiled_names = ("rasa-1", "gateway-1")
            for name in profiled_names:
                os.kill(topology.cluster.pid(name), signal.SIGUSR1)
            await bench.measure(
                topology, "profiled, saturation → gateway", "gateway", sat_citizens, saturation
            )
            for name in profiled_names:
                os.kill(topology.cluster.pid(name), signal.SIGUSR2)
            await asyncio.sleep(2)
            bench.stop(topology)
            for name in profiled_names:
                print_profile(bench.work_dir / f"{name}.prof")
            return 0

        for replicas in (
            () if args.only in ("knobs", "overload") else (1,) if args.quick else (1, 2)
        ):
            name = f"{replicas} Rasa replica{'s' if replicas > 1 else ''}, 2 gateways"
            topology = bench.start(name, replicas, 2, Knobs())
            await bench.warm_up(topology)
            if replicas == 1:
                # Pure latency, nothing queued: one citizen after the other, no pauses.
                alone = [
                    await bench.measure(topology, label, target, 1, saturation, 4)
                    for label, target in (
                        ("1 citizen, no pauses → Rasa REST (baseline)", "rasa"),
                        ("1 citizen, no pauses → gateway /ws", "gateway"),
                    )
                ]
                overhead["1 citizen"] = alone[1].percentile(50) / alone[0].percentile(50) - 1
            for n in citizens:
                if replicas == 1:
                    direct = await bench.measure(
                        topology, f"{n} citizens → Rasa REST (baseline)", "rasa", n, think
                    )
                via = await bench.measure(
                    topology, f"{n} citizens → gateway /ws", "gateway", n, think
                )
                if replicas == 1 and not via.errors():  # shed load ("busy") is no latency
                    overhead[f"{n} citizens"] = via.percentile(50) / direct.percentile(50) - 1
            sat = await bench.measure(
                topology,
                f"{sat_citizens} citizens, no pauses → gateway",
                "gateway",
                sat_citizens,
                saturation,
                args.rounds,
            )
            ratio[replicas] = sat.throughput
            if replicas == 1:
                await bench.measure(
                    topology,
                    f"{sat_citizens} citizens, no pauses → Rasa REST",
                    "rasa",
                    sat_citizens,
                    saturation,
                    args.rounds,
                )
            bench.stop(topology)

        if args.only in (None, "overload") and not args.quick:
            # The same load with the gateways' queue off (as before issue 20) and on (default).
            n = max(citizens)
            for label, gateway in (("no queue", {"rasa_concurrency": 0}), ("queue", {})):
                topology = bench.start(
                    f"2 Rasa replicas, 2 gateways, {label}", 2, 2, Knobs(), **gateway
                )
                await bench.warm_up(topology)
                run = await bench.measure(
                    topology, f"{n} citizens → gateway /ws ({label})", "gateway", n, think
                )
                overload.append((label, run))
                bench.stop(topology)

        if not (args.quick or args.skip_knobs or args.only in ("main", "overload")):
            for knobs in KNOB_SETTINGS:
                topology = bench.start(f"knobs: {knobs}", knobs.replicas, 0, knobs)
                await bench.warm_up(topology)
                single = await bench.measure(
                    topology, "1 citizen, no pauses → Rasa REST", "rasa", 1, saturation, 4
                )
                sat = await bench.measure(
                    topology,
                    f"{sat_citizens} citizens, no pauses → Rasa",
                    "rasa",
                    sat_citizens,
                    saturation,
                    args.rounds,
                )
                knob_rows.append((knobs, single, sat))
                bench.stop(topology)
    finally:
        for topology in list(bench.running):
            topology.cluster.stop()
        bench.drop_database()

    report(bench, args, overhead, ratio, knob_rows, overload)
    return 0


def report(
    bench: Bench,
    args: argparse.Namespace,
    overhead: dict[str, float],
    ratio: dict[int, float],
    knob_rows: list[tuple[Knobs, RunResult, RunResult]],
    overload: list[tuple[str, RunResult]],
) -> None:
    print("\n=== Load (latency from sending a message to its answer's typing-off frame)")
    header = (
        f"{'configuration':<34} {'run':<44} {'sent':>5} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'msg/s':>6} {'errors':<18} {'lost':>4}"
    )
    print(header)
    for r in bench.results:
        errors = ",".join(f"{k}:{v}" for k, v in r["errors"].items()) or "0"
        print(
            f"{r['config']:<34} {r['label']:<44} {r['sent']:>5} {r['p50_ms']:>6.0f}ms"
            f"{r['p95_ms']:>6.0f}ms{r['p99_ms']:>6.0f}ms {r['throughput_per_s']:>6.1f} "
            f"{errors:<18} {r['lost']:>4}"
        )
    print("\n=== CPU per answered message (ms), by process group; and what else ran (s of CPU)")
    groups = ("rasa", "gateway", "actions", "postgresql", "redis", "bench client")
    print(f"{'configuration':<22} {'run':<44}" + "".join(f"{g:>13}" for g in groups)
          + f"{'others (s)':>11}{'idle (s)':>9}")  # fmt: skip
    for r in bench.results:
        answered = r["answered"] or 1
        per = {
            g: sum(v for k, v in r["cpu_seconds"].items() if k.startswith(g)) / answered * 1000
            for g in groups
        }
        print(
            f"{r['config'][:22]:<22} {r['label'][:44]:<44}"
            + "".join(f"{per[g]:>13.1f}" for g in groups)
            + f"{r['cpu_seconds'].get('everything else', 0):>11.1f}"
            + f"{r['cpu_seconds'].get('idle', 0):>9.1f}"
        )
    print("\n=== Peak RSS (MiB; a process with workers: the sum over them)")
    for config, usage in bench.memory.items():
        print(f"{config:<44} " + ", ".join(f"{k} {v:.0f}" for k, v in usage.items()))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'bench client':<44} {own:.0f}")

    if knob_rows:
        print("\n=== Rasa knobs (one replica, straight to its REST channel)")
        print(
            f"{'knobs':<44} {'1 citizen p50':>14} {'saturation p50':>15} {'msg/s':>7}"
            f" {'Rasa CPU/msg':>13}"
        )
        for knobs, single, sat in knob_rows:
            print(
                f"{knobs!s:<44} {single.percentile(50) * 1000:>12.0f}ms "
                f"{sat.percentile(50) * 1000:>13.0f}ms {sat.throughput:>7.1f}"
                f" {rasa_cpu_per_message(sat) * 1000:>11.0f}ms"
            )
        best = max(knob_rows, key=lambda row: row[2].throughput)[0]
        print(f"best throughput: {best}")

    targets: dict[str, Any] = {}
    if overload:
        print("\n=== Overload: 2 Rasa replicas, the gateways' queue off and on (bot/rasa/queue.py)")
        print(f"{'gateways':<10} {'citizens':>8} {'sent':>5} {'busy':>5} {'busy %':>7}"
              f" {'told 正在排队':>13} {'p50':>7} {'p95':>7} {'lost':>5}")  # fmt: skip
        for label, run in overload:
            busy = run.errors().get("busy", 0)
            share = busy / run.sent * 100 if run.sent else float("nan")
            print(
                f"{label:<10} {run.citizens:>8} {run.sent:>5} {busy:>5} {share:>6.1f}%"
                f" {sum(s.queued for s in run.samples):>13} {run.percentile(50) * 1000:>5.0f}ms"
                f" {run.percentile(95) * 1000:>5.0f}ms {run.lost:>5}"
            )
            targets[f"busy replies, {run.citizens} citizens, 2 replicas, {label}"] = (
                f"{share:.1f}% (target < 1%)"
            )

    print("\n=== Targets (issues 8, 20)")
    for load, value in overhead.items():
        targets[f"gateway overhead at p50, {load}"] = f"{value * 100:+.1f}% (target ≤ 10%)"
    if 1 in ratio and 2 in ratio:
        targets["two replicas vs one"] = f"{ratio[2] / ratio[1]:.2f}× (target ≥ 1.6×)"
    lost = sum(r["lost"] for r in bench.results)
    targets["lost messages"] = f"{lost} (target 0)"
    first = next(
        (
            r
            for r in bench.results
            if r["target"] == "gateway"
            and r["citizens"] == 50
            and r["think_seconds"][1] > 0
            and r["config"].startswith("2")
        ),
        None,
    )
    if first:
        targets["p95 at 50 citizens (2 replicas)"] = f"{first['p95_ms']:.0f} ms (target < 1000)"
    for key, value in targets.items():
        print(f"{key}: {value}")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "runs": bench.results,
                "peak_rss_mib": bench.memory,
                "knobs": [
                    {
                        **asdict(k),
                        "single_p50_ms": s.percentile(50) * 1000,
                        "saturation_msg_s": t.throughput,
                        "rasa_cpu_ms_per_message": rasa_cpu_per_message(t) * 1000,
                    }
                    for k, s, t in knob_rows
                ],
                "targets": targets,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\n(figures also in {OUT / 'latest.json'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--citizens",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[50, 200],
        help="comma-separated, default 50,200",
    )
    parser.add_argument("--saturation-citizens", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=3, help="saturation runs: each script this many times"
    )
    parser.add_argument("--think-min", type=float, default=2.0, help="seconds between turns")
    parser.add_argument("--think-max", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="20 citizens, one replica")
    parser.add_argument("--skip-knobs", action="store_true")
    parser.add_argument(
        "--only",
        choices=["main", "knobs", "overload"],
        help="only one part of the bench (overload: 2 replicas, the gateways' queue off and on)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile Rasa and a gateway")
    parser.add_argument("--database", default=BENCH_DATABASE, help="PostgreSQL database to use")
    args = parser.parse_args()
    if args.quick:
        args.think_min, args.think_max = min(args.think_min, 0.5), min(args.think_max, 1.5)
    # SIGTERM (`timeout`, a CI job's end) unwinds like Ctrl-C, so that the `finally` in
    # main_async stops every cluster it started instead of orphaning them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print("\nstopped: every process the bench started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
