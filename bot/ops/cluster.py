"""The scale-out topology on one machine: `make run-cluster` (`python -m bot run-cluster`).

    PostgreSQL (our tables + Rasa's SQLTrackerStore `events`)      Redis (RedisLockStore)
        ▲            ▲                       ▲                          ▲
    gateway :8000, gateway :8001 ──RasaPool──▶ rasa :5005, rasa :5006 ──▶ action server :5055
    (each knows every replica: RASA_URLS)       (endpoints-cluster.yml)    (several workers)

The processes are the ones of `make run` (bot/ops/stack.py), started several times with the
settings below; bot/ops/supervisor.py runs them. A conversation stays on one Rasa replica
(consistent hashing in bot/rasa/pool.py) and moves to the next when that one dies: its tracker
is in PostgreSQL.

Settings (environment, read by bot/settings.py; `ClusterConfig.from_settings`): DATABASE_URL
(default postgresql://postgres@127.0.0.1:5432/ipbot, created if missing), REDIS_URL
(redis://127.0.0.1:6379/0: the gateways' pub/sub; Rasa's lock store uses database
RASA_LOCK_REDIS_DB, 1, of the same server), RASA_REPLICAS (2, on RASA_PORT, RASA_PORT+1 …),
GATEWAY_INSTANCES (2, on BOT_PORT, BOT_PORT+1 …), ACTION_SERVER_SANIC_WORKERS, SANIC_WORKERS (Rasa's
workers per replica), TF_INTRA_OP_PARALLELISM_THREADS / TF_INTER_OP_PARALLELISM_THREADS,
RASA_SQL_POOL_SIZE / RASA_SQL_MAX_OVERFLOW, RASA_LOCK_KEY_PREFIX (default: REDIS_NAMESPACE in
letters and digits, `ipbot`), TICKET_LOCK_LIFETIME.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from bot.ops import launch
from bot.ops.stack import Service, services
from bot.settings import PROJECT_ROOT, Settings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ipbot"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENDPOINTS = PROJECT_ROOT / "endpoints-cluster.yml"

# Defaults measured with bench/load.py on the 2-core development machine (README "Scale-out"):
# one TF thread each way costs the least CPU per message (36 ms, against 37-39 ms with 2/2 or
# TensorFlow's own choice; its ops are small, more threads only contend with the other replica),
# and two replicas of one Sanic worker answer more (41.7 msg/s) than one replica of two workers
# (35.5 msg/s, as much memory) and survive the loss of one. SANIC_WORKERS = cores per replica.
DEFAULT_TF_INTRA_THREADS = 1
DEFAULT_TF_INTER_THREADS = 1
DEFAULT_RASA_WORKERS = 1
DEFAULT_ACTION_WORKERS = 2
# Rasa's SQLTrackerStore works synchronously on the event loop: one connection per Sanic worker
# is in use at a time. Rasa's own defaults (50 + 100 per process) could exhaust PostgreSQL.
DEFAULT_RASA_SQL_POOL_SIZE = 2
DEFAULT_RASA_SQL_MAX_OVERFLOW = 2
# Each replica locks conversations under its own Redis key prefix: its Sanic workers share the
# locks, other replicas do not. A killed replica leaves the locks of its in-flight messages
# behind; shared, they would make the replica taking over wait for them to expire (Rasa's
# TICKET_LOCK_LIFETIME, 60 s by default) instead of answering at once. Across replicas the
# gateway keeps a conversation on one replica. The lifetime is shortened to 20 s: longer than
# any message takes (the gateway gives up after RASA_TIMEOUT, 5 s), shorter than a replica's
# restart (~40 s), so a restarted replica never waits for the locks of its previous life.
DEFAULT_LOCK_LIFETIME_SECONDS = 20


class ClusterError(RuntimeError):
    """The cluster cannot start; the message says why and what to do."""


def _at_least(name: str, value: int | None, default: int, minimum: int = 1) -> int:
    """`value` (the variable `name`, None when unset) or `default`, checked against `minimum`."""
    value = default if value is None else value
    if value < minimum:
        raise ClusterError(f"{name} must be at least {minimum}, got {value}")
    return value


def lock_key_prefix_for(namespace: str) -> str:
    """The default lock key prefix: the deployment's REDIS_NAMESPACE in letters and digits (Rasa
    accepts no other prefix), so that deployments sharing a Redis lock apart."""
    return "".join(ch for ch in namespace if ch.isalnum()) or "ipbot"


@dataclass(frozen=True)
class ClusterConfig:
    database_url: str = DEFAULT_DATABASE_URL
    # The gateways' Redis (pub/sub between instances); Rasa's lock store uses the same server,
    # in its own database number.
    redis_url: str = DEFAULT_REDIS_URL
    lock_redis_db: int = 1
    lock_key_prefix: str = "ipbot"  # + "r1", "r2" …: one namespace per replica
    lock_lifetime: int = DEFAULT_LOCK_LIFETIME_SECONDS
    rasa_ports: tuple[int, ...] = (5005, 5006)
    gateway_ports: tuple[int, ...] = (8000, 8001)
    action_port: int = 5055
    action_workers: int = DEFAULT_ACTION_WORKERS
    rasa_workers: int = DEFAULT_RASA_WORKERS
    tf_intra_threads: int = DEFAULT_TF_INTRA_THREADS
    tf_inter_threads: int = DEFAULT_TF_INTER_THREADS
    rasa_sql_pool_size: int = DEFAULT_RASA_SQL_POOL_SIZE
    rasa_sql_max_overflow: int = DEFAULT_RASA_SQL_MAX_OVERFLOW
    # More environment for the Rasa replicas (e.g. LOG_LEVEL_LIBRARIES=INFO for access logs).
    rasa_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterConfig:
        """The topology `settings` ask for (RASA_REPLICAS, GATEWAY_INSTANCES … from
        `settings.cluster`; the ports from RASA_PORT, BOT_PORT, ACTION_PORT)."""
        c = settings.cluster
        rasa_port = _at_least("RASA_PORT", settings.rasa_port, 5005)
        gateway_port = _at_least("BOT_PORT", settings.gateway_port, 8000)
        prefix = c.lock_key_prefix or lock_key_prefix_for(settings.redis_namespace)
        if not prefix.isalnum():
            raise ClusterError(f"RASA_LOCK_KEY_PREFIX must be letters and digits, got {prefix!r}")
        replicas = _at_least("RASA_REPLICAS", c.rasa_replicas, 2)
        instances = _at_least("GATEWAY_INSTANCES", c.gateway_instances, 2)
        return cls(
            database_url=c.database_url or DEFAULT_DATABASE_URL,
            redis_url=c.redis_url or DEFAULT_REDIS_URL,
            lock_redis_db=_at_least("RASA_LOCK_REDIS_DB", c.lock_redis_db, 1, 0),
            lock_lifetime=_at_least(
                "TICKET_LOCK_LIFETIME", c.lock_lifetime, DEFAULT_LOCK_LIFETIME_SECONDS
            ),
            lock_key_prefix=prefix,
            rasa_ports=tuple(rasa_port + i for i in range(replicas)),
            gateway_ports=tuple(gateway_port + i for i in range(instances)),
            action_port=_at_least("ACTION_PORT", settings.action_port, 5055),
            action_workers=_at_least(
                "ACTION_SERVER_SANIC_WORKERS", c.action_workers, DEFAULT_ACTION_WORKERS
            ),
            rasa_workers=_at_least("SANIC_WORKERS", c.rasa_workers, DEFAULT_RASA_WORKERS),
            tf_intra_threads=_at_least(
                "TF_INTRA_OP_PARALLELISM_THREADS", c.tf_intra_threads, DEFAULT_TF_INTRA_THREADS, 0
            ),
            tf_inter_threads=_at_least(
                "TF_INTER_OP_PARALLELISM_THREADS", c.tf_inter_threads, DEFAULT_TF_INTER_THREADS, 0
            ),
            rasa_sql_pool_size=_at_least(
                "RASA_SQL_POOL_SIZE", c.rasa_sql_pool_size, DEFAULT_RASA_SQL_POOL_SIZE
            ),
            rasa_sql_max_overflow=_at_least(
                "RASA_SQL_MAX_OVERFLOW", c.rasa_sql_max_overflow, DEFAULT_RASA_SQL_MAX_OVERFLOW, 0
            ),
        )

    def rasa_urls(self, host: str) -> tuple[str, ...]:
        return tuple(f"http://{host}:{port}" for port in self.rasa_ports)


def services_cluster(settings: Settings, model: Path, config: ClusterConfig) -> list[Service]:
    """The processes of the topology: bot/ops/stack.py's services, several times, re-configured."""
    settings = replace(
        settings,
        database_url=config.database_url,
        redis_url=config.redis_url,
        action_port=config.action_port,
        rasa_port=config.rasa_ports[0],
        gateway_port=(config.gateway_ports or (settings.gateway_port,))[0],
    )
    redis = urlsplit(config.redis_url)
    rasa_urls = ",".join(config.rasa_urls(settings.rasa_host))

    def one(name: str, s: Settings) -> Service:
        return next(service for service in services(s, model) if service.name == name)

    actions = one("actions", settings)
    topology = [
        replace(
            actions,
            env={**actions.env, "ACTION_SERVER_SANIC_WORKERS": str(config.action_workers)},
        )
    ]
    for i, port in enumerate(config.rasa_ports, start=1):
        rasa = one("rasa", replace(settings, rasa_port=port))
        argv = [str(ENDPOINTS) if a.endswith("endpoints.yml") else a for a in rasa.argv]
        env = {
            **rasa.env,
            "RASA_TRACKER_STORE_URL": config.database_url,
            "SQL_POOL_SIZE": str(config.rasa_sql_pool_size),
            "SQL_MAX_OVERFLOW": str(config.rasa_sql_max_overflow),
            "RASA_LOCK_REDIS_HOST": redis.hostname or "127.0.0.1",
            "RASA_LOCK_REDIS_PORT": str(redis.port or 6379),
            "RASA_LOCK_REDIS_DB": str(config.lock_redis_db),
            "RASA_LOCK_KEY_PREFIX": f"{config.lock_key_prefix}r{i}",
            "TICKET_LOCK_LIFETIME": str(config.lock_lifetime),
            "SANIC_WORKERS": str(config.rasa_workers),
            "TF_INTRA_OP_PARALLELISM_THREADS": str(config.tf_intra_threads),
            "TF_INTER_OP_PARALLELISM_THREADS": str(config.tf_inter_threads),
            **config.rasa_env,
        }
        topology.append(replace(rasa, name=f"rasa-{i}", argv=argv, env=env))
    for i, port in enumerate(config.gateway_ports, start=1):
        gateway = one("gateway", replace(settings, gateway_port=port))
        topology.append(
            replace(gateway, name=f"gateway-{i}", env={**gateway.env, "RASA_URLS": rasa_urls})
        )
    return topology


# ---- PostgreSQL and Redis ---------------------------------------------------------------------


def ensure_database(database_url: str) -> bool:
    """Create the PostgreSQL database of the URL unless it exists; True when created."""
    from bot.db.engine import create_database_if_missing

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ClusterError(
            f"The cluster needs PostgreSQL (several processes share the trackers), not {url}"
        )
    try:
        return create_database_if_missing(database_url)
    except Exception as exc:
        raise ClusterError(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)}: {exc}"
        ) from exc


def check_redis(redis_url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise ClusterError(f"Redis is not reachable at {redis_url}: {exc}") from exc


@dataclass(frozen=True)
class PoolUse:
    component: str
    processes: int
    per_process: int  # pool_size + max_overflow: the most connections one process opens

    @property
    def total(self) -> int:
        return self.processes * self.per_process


def connection_budget(config: ClusterConfig) -> list[PoolUse]:
    """The most PostgreSQL connections each part can open (its pool size + overflow)."""
    from bot.db.engine import make_engine

    engine = make_engine(config.database_url)  # no connection is opened here
    ours = engine.pool.size() + getattr(engine.pool, "_max_overflow", 0)
    engine.dispose()
    rasa = config.rasa_sql_pool_size + config.rasa_sql_max_overflow
    return [
        PoolUse("gateway", len(config.gateway_ports), ours),
        PoolUse("action server worker", config.action_workers, ours),
        PoolUse("Rasa worker", len(config.rasa_ports) * config.rasa_workers, rasa),
    ]


def budget_report(config: ClusterConfig) -> str:
    """The connection arithmetic; raises ClusterError when the pools could exceed the limit."""
    from bot.db.engine import postgres_limits

    uses = connection_budget(config)
    limit, reserved, in_use = postgres_limits(config.database_url)
    total = sum(u.total for u in uses)
    lines = [f"  {u.component}: {u.processes} × {u.per_process} = {u.total}" for u in uses]
    available = limit - reserved
    lines.append(
        f"  at most {total} PostgreSQL connections; max_connections {limit} − {reserved} reserved"
        f" = {available}; {in_use} in use by others now"
    )
    if total > available:
        raise ClusterError(
            "The connection pools could exceed PostgreSQL's max_connections:\n"
            + "\n".join(lines)
            + "\nLower RASA_REPLICAS, SANIC_WORKERS, ACTION_SERVER_SANIC_WORKERS, "
            "GATEWAY_INSTANCES or RASA_SQL_POOL_SIZE, or raise max_connections."
        )
    if total > available - in_use:
        lines.append("  warning: with the connections in use now, the pools may run short")
    return "\n".join(lines)


# ---- processes (tests and bench/load.py; `make run-cluster` uses bot/ops/supervisor.py) ---


class LocalCluster:
    """The topology's processes started in the background, each logging to its own file."""

    def __init__(self, topology: list[Service], log_dir: Path) -> None:
        self.topology = {s.name: s for s in topology}
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, *names: str, timeout: float = 300) -> None:
        """Start (all by default) and wait until each answers; raises with its log if not."""
        services = [self.topology[name] for name in names or tuple(self.topology)]
        try:
            launch.start_services(services, self.log_dir, self.processes, timeout)
        except launch.StartError as exc:
            raise ClusterError(str(exc)) from exc

    def pause(self, name: str) -> None:
        """Freeze a process (SIGSTOP): it accepts connections but answers nothing."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process and its workers at once (a crash, not a shutdown)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait()

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is not None:
                launch.stop(process)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def log(self, name: str) -> str:
        return launch.read_log(self.log_dir, name)

    def log_tail(self, name: str, lines: int = 40) -> str:
        return launch.log_tail(self.log_dir, name, lines)
