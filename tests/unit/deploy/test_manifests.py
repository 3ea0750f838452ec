"""No drift between deploy/ and the code: every environment variable a manifest, the compose file,
a unit or an image sets is one the code reads; every process runs the command the local cluster
runs (bot/ops/cluster.py, the one the rolling-restart test drives); ports and health endpoints
are the real ones."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bot.__main__ import main as bot_main
from bot.ops.cluster import ClusterConfig, services_cluster
from bot.ops.security import review
from bot.ops.stack import Service
from bot.rasa.server import interface_argument
from bot.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
SITE_PACKAGES = Path(yaml.__file__).resolve().parent.parent
# Variables read by the libraries we run, each with the file that names it (checked below).
LIBRARY_VARIABLES = {
    "SANIC_HOST": "rasa_sdk/endpoint.py",
    "ACTION_SERVER_SANIC_WORKERS": "rasa_sdk/constants.py",
    "SANIC_WORKERS": "rasa/constants.py",
    "TF_INTRA_OP_PARALLELISM_THREADS": "rasa/constants.py",
    "TF_INTER_OP_PARALLELISM_THREADS": "rasa/constants.py",
    "SQL_POOL_SIZE": "rasa/core/constants.py",
    "SQL_MAX_OVERFLOW": "rasa/core/constants.py",
    "TICKET_LOCK_LIFETIME": "rasa/core/lock_store.py",
    "RASA_TELEMETRY_ENABLED": "rasa/telemetry.py",
    "TF_CPP_MIN_LOG_LEVEL": "rasa/utils/common.py",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "sqlalchemy/util/deprecations.py",
}
# Read by the interpreter or the operating system.
PROCESS_VARIABLES = {"PATH", "HOME", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
# Kinds of process, by the local cluster's service names.
KINDS = ("rasa", "actions", "gateway", "migrate")


def settings_variables() -> set[str]:
    source = (PROJECT_ROOT / "bot" / "settings.py").read_text()
    names = set(re.findall(r"_env\w*\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
    names |= set(re.findall(r"\"([A-Z][A-Z0-9_]+)\": \"\w+\"", source))  # GENERATED_SECRETS
    return names


def endpoint_variables() -> set[str]:
    text = (PROJECT_ROOT / "endpoints-cluster.yml").read_text()
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return set(re.findall(r"\$\{(\w+)\}", "\n".join(lines)))


def variables_read() -> set[str]:
    return settings_variables() | endpoint_variables() | set(LIBRARY_VARIABLES) | PROCESS_VARIABLES


@dataclass
class Process:
    """One process as a deployment file defines it."""

    where: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # value "" when it comes from elsewhere
    ports: set[int] = field(default_factory=set)
    health_paths: set[str] = field(default_factory=set)
    # Writable directories: path → whether it outlives the container (a named volume, a PVC).
    mounts: dict[str, bool] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        module = self.argv[self.argv.index("-m") + 1]
        if module == "bot.rasa.server":
            return "rasa"
        if module == "bot.ops.action_server":  # rasa-sdk after the production check
            return "actions"
        return {"serve": "gateway", "kb": "migrate", "db": "migrate"}[self.argv[3]]


# ---- reading the deployment files -------------------------------------------------------------


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def compose_processes() -> Iterator[Process]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if "ipbot" not in service["image"]:
            continue
        probe = " ".join(service.get("healthcheck", {}).get("test", []))
        mounts = {path: False for path in service.get("tmpfs", [])}
        mounts |= {m.split(":")[1]: True for m in service.get("volumes", [])}
        yield Process(
            f"compose.yaml {name}",
            [str(a) for a in service["command"]],
            {k: str(v) for k, v in service.get("environment", {}).items()},
            health_paths=set(re.findall(r"http://127\.0\.0\.1:\d+(/\w+)", probe)),
            ports={int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)/", probe)},
            mounts=mounts,
        )


def kubernetes_documents() -> list[dict]:
    return [
        d
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for d in load_all(path)
    ]


def kubernetes_processes() -> Iterator[Process]:
    documents = kubernetes_documents()
    data = {
        (d["kind"], d["metadata"]["name"]): {**d.get("data", {}), **d.get("stringData", {})}
        for d in documents
        if d["kind"] in ("ConfigMap", "Secret")
    }
    for d in documents:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        claims = {v["name"]: "persistentVolumeClaim" in v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
            for source in c.get("envFrom", []):
                kind, ref = (
                    ("ConfigMap", source["configMapRef"])
                    if "configMapRef" in source
                    else ("Secret", source["secretRef"])
                )
                env = {**{k: str(v) for k, v in data[(kind, ref["name"])].items()}, **env}
            probes = [c[p] for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in c]
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            yield Process(
                f"kubernetes {d['kind']} {d['metadata']['name']}",
                [str(a) for a in c["command"]],
                env,
                ports=set(named.values()),
                health_paths={p["httpGet"]["path"] for p in probes if "httpGet" in p},
                mounts={m["mountPath"]: claims[m["name"]] for m in c.get("volumeMounts", [])},
            )


def systemd_processes() -> Iterator[Process]:
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        env: dict[str, str] = {}
        argv: list[str] = []
        mounts: dict[str, bool] = {}
        for line in unit.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "ReadWritePaths":
                mounts |= {path: True for path in value.split()}
            elif key == "Environment":
                for item in shlex.split(value):
                    name, _, setting = item.partition("=")
                    env[name] = setting
            elif key == "ExecStart":
                argv = shlex.split(value)
        argv[0] = "python"
        yield Process(f"systemd {unit.name}", argv, env, mounts=mounts)


def env_file_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def env_file_variables(path: Path) -> set[str]:
    return set(env_file_values(path))


def dockerfile_final_stage(path: Path) -> str:
    return path.read_text().rsplit("\nFROM ", 1)[1]


def dockerfile_processes() -> Iterator[Process]:
    for path in sorted((DEPLOY / "docker").glob("*.Dockerfile")):
        stage = dockerfile_final_stage(path).replace("\\\n", " ")
        env = dict(
            item.split("=", 1)
            for line in stage.splitlines()
            if line.startswith("ENV ")
            for item in shlex.split(line[4:])
        )
        [cmd] = re.findall(r"^CMD (\[.*\])$", stage, re.M)
        [probe] = re.findall(r"HEALTHCHECK .*", stage)
        yield Process(
            f"docker/{path.name}",
            yaml.safe_load(cmd),
            env,
            ports={int(p) for p in re.findall(r"EXPOSE ([\d ]+)", stage)[0].split()},
            health_paths=set(re.findall(r"http://127\.0\.0\.1:\d+(/\w+)", probe)),
        )


def all_processes() -> list[Process]:
    return [
        *compose_processes(),
        *kubernetes_processes(),
        *systemd_processes(),
        *dockerfile_processes(),
    ]


# ---- the code's own topology ------------------------------------------------------------------


def local_topology() -> dict[str, Service]:
    """The local cluster's processes by kind (what tests/e2e/test_rolling_restart.py starts)."""
    settings = Settings(var_dir=Path("/nonexistent"), database_url="postgresql://x@h/db")
    services = services_cluster(settings, Path("/m/model.tar.gz"), ClusterConfig())
    return {kind: next(s for s in services if s.name.startswith(kind)) for kind in KINDS[:3]}


VALUE_FLAGS = {"--model", "--interface", "--port"}  # deployment-specific values


def shape(argv: list[str]) -> list[str]:
    """The command with the interpreter and the deployment-specific values left out, and files
    by their name (the processes run in the project directory)."""
    out: list[str] = []
    for i, arg in enumerate(argv[1:], start=1):
        if argv[i - 1] in VALUE_FLAGS:
            out.append("…")
        else:
            out.append(Path(arg).name if "/" in arg else arg)
    return out


# ---- the tests ----------------------------------------------------------------------------------


def test_the_files_are_found() -> None:
    """The readers above see every process definition (a parser that finds nothing passes all)."""
    found = {(p.where.split()[0], p.kind) for p in all_processes()}
    for where in ("compose.yaml", "kubernetes", "systemd"):
        assert {(where, kind) for kind in KINDS} <= found
    assert {("docker/rasa.Dockerfile", "rasa"), ("docker/gateway.Dockerfile", "gateway")} <= found


def test_the_library_variables_are_really_read() -> None:
    for name, relative in LIBRARY_VARIABLES.items():
        assert name in (SITE_PACKAGES / relative).read_text(), (name, relative)


def test_settings_reads_the_variables_named_here() -> None:
    """The reader of bot/settings.py is not blind: it finds what the README documents."""
    assert {"DATABASE_URL", "RASA_URLS", "SESSION_SECRET", "RASA_AUTH_TOKEN", "BOT_ENV"} <= (
        settings_variables()
    )
    assert "POD_INDEX" not in variables_read()


@pytest.mark.parametrize("process", all_processes(), ids=lambda p: p.where)
def test_every_variable_set_is_one_the_code_reads(process: Process) -> None:
    helpers = {  # set only to compose another variable: $(POD_INDEX) in Kubernetes
        name for name in process.env if any(f"$({name})" in v for v in process.env.values())
    }
    unknown = set(process.env) - variables_read() - helpers
    assert unknown == set(), f"{process.where} sets variables nothing reads"


@pytest.mark.parametrize(
    "path",
    [DEPLOY / "env.example", DEPLOY / "systemd/ipbot.env.example"],
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_variable_of_an_env_file_is_read(path: Path) -> None:
    # The compose file's own variables: image names, the public host, PostgreSQL's password.
    compose_only = {"IPBOT_RASA_IMAGE", "IPBOT_GATEWAY_IMAGE", "PUBLIC_HOST", "POSTGRES_PASSWORD"}
    assert env_file_variables(path) - variables_read() - compose_only == set()


def test_configmap_and_secret_keys_are_read() -> None:
    for d in kubernetes_documents():
        if d["kind"] in ("ConfigMap", "Secret"):
            keys = {*d.get("data", {}), *d.get("stringData", {})}
            assert keys - variables_read() == set(), d["metadata"]["name"]


@pytest.mark.parametrize("process", all_processes(), ids=lambda p: p.where)
def test_every_process_runs_the_local_clusters_command(process: Process) -> None:
    if process.kind == "migrate":
        with pytest.raises(SystemExit) as exit_:  # a real subcommand: its help, exit 0
            bot_main([*process.argv[3:], "--help"])
        assert exit_.value.code == 0
        return
    local = local_topology()[process.kind]
    assert shape(process.argv) == shape(local.argv), process.where
    if process.kind == "rasa":
        for flag in ("--endpoints", "--credentials"):
            assert (PROJECT_ROOT / process.argv[process.argv.index(flag) + 1]).exists()


def test_rasa_gets_every_variable_its_endpoints_need() -> None:
    needed = endpoint_variables() | {"RASA_AUTH_TOKEN", "BOT_ENV"}
    for process in [*compose_processes(), *kubernetes_processes()]:
        if process.kind == "rasa":
            assert needed - set(process.env) == set(), process.where
    systemd = {p.kind: p for p in systemd_processes()}["rasa"]
    provided = set(systemd.env) | env_file_variables(DEPLOY / "systemd/ipbot.env.example")
    assert needed - provided == set()


def test_gateways_get_their_production_settings() -> None:
    """TRUSTED_PROXIES too: behind a load balancer without it every citizen is one address for
    the per-address limits. The systemd gateway listens where nginx on lb-1 reaches it."""
    needed = {"RASA_AUTH_TOKEN", "SESSION_SECRET", "DATABASE_URL", "REDIS_URL", "RASA_URLS"}
    needed |= {"BOT_ENV", "BOT_ALLOWED_ORIGINS", "ACTION_HOST", "TRUSTED_PROXIES"}
    for process in [*compose_processes(), *kubernetes_processes()]:
        if process.kind == "gateway":
            assert needed - set(process.env) == set(), process.where
            assert process.env["TRUSTED_PROXIES"], process.where
    systemd = env_file_values(DEPLOY / "systemd/ipbot.env.example")
    assert needed - set(systemd) == set()
    for name in ("BOT_HOST", "TRUSTED_PROXIES"):  # nginx is on another machine (lb-1)
        address = ipaddress.ip_address(systemd[name])
        assert address.is_private and not address.is_loopback, name


def test_the_compose_gateways_trust_the_compose_network() -> None:
    """nginx reaches the gateways from the project network, whose subnet is fixed for this."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    [subnet] = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    for process in compose_processes():
        if process.kind == "gateway":
            assert process.env["TRUSTED_PROXIES"] == subnet, process.where


def lock_python(lock: Path) -> str:
    """The Python (major.minor) a lock was resolved on, from the header `make lock` writes."""
    [version] = re.findall(r"^# .* on Python (\d+\.\d+)\b", lock.read_text(), re.M)
    return version


@pytest.mark.parametrize(
    "path", sorted((DEPLOY / "docker").glob("*.Dockerfile")), ids=lambda p: p.name
)
def test_each_image_runs_the_python_its_lock_was_resolved_on(path: Path) -> None:
    """Every stage's base image is an exact python:X.Y.Z tag of the Python the copied lock was
    resolved on: the gateway's lock pins wheels for 3.11 only (numpy 2.4 needs it)."""
    text = path.read_text()
    [lock] = re.findall(r"^COPY (requirements[\w-]*\.lock) ", text, re.M)
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases, path.name
    for base in bases:
        match = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-bookworm", base)
        assert match, f"{path.name}: {base} is not an exact python:X.Y.Z-slim-bookworm tag"
        assert match[1] == lock_python(PROJECT_ROOT / lock), f"{path.name}: {base} for {lock}"


def test_the_lock_headers_name_the_makefiles_interpreters() -> None:
    """The header read above agrees with the interpreter the Makefile builds each environment
    with (PYENV_PYTHON310 for requirements.lock, PYENV_PYTHON311 for the gateway's)."""
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for variable, lock in [
        ("PYENV_PYTHON310", "requirements.lock"),
        ("PYENV_PYTHON311", "requirements-gateway.lock"),
    ]:
        [version] = re.findall(rf"^{variable} := \S*/(\d+\.\d+)\.\d+/bin/python$", makefile, re.M)
        assert lock_python(PROJECT_ROOT / lock) == version, lock


def test_the_training_examples_outlive_the_gateway() -> None:
    """The review inbox's "加入训练数据" writes into REVIEW_TRAINING_DIR (default data/nlu, absent
    from the image, on a read-only root): a mounted volume that outlives the container, shared
    by every gateway pod; with systemd, data/nlu of the checkout, writable despite
    ProtectSystem=strict."""
    for process in [*compose_processes(), *kubernetes_processes()]:
        if process.kind == "gateway":
            directory = process.env.get("REVIEW_TRAINING_DIR", "")
            assert process.mounts.get(directory), f"{process.where}: {directory!r} is lost"
    claims = [d for d in kubernetes_documents() if d["kind"] == "PersistentVolumeClaim"]
    assert [c["spec"]["accessModes"] for c in claims] == [["ReadWriteMany"]]
    gateway = {p.kind: p for p in systemd_processes()}["gateway"]
    assert "REVIEW_TRAINING_DIR" not in env_file_values(DEPLOY / "systemd/ipbot.env.example")
    assert gateway.mounts.get("/opt/ipbot/data/nlu"), "the checkout's data/nlu is read-only"


@pytest.mark.parametrize(
    "process",
    [
        p
        for p in [*compose_processes(), *kubernetes_processes(), *systemd_processes()]
        if p.kind in ("rasa", "actions")
    ],
    ids=lambda p: p.where,
)
def test_rasa_and_the_action_server_pass_the_check_on_what_they_bind(
    process: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each runs the production start-up check, which lets it bind what it binds: Rasa its
    --interface, the action server SANIC_HOST; 0.0.0.0 in a container only where declared."""
    env = dict(process.env)
    if process.where.startswith("systemd"):
        env = {**env_file_values(DEPLOY / "systemd/ipbot.env.example"), **env}
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], arg) for arg in process.argv]
    token = "rT4k9ZqL2vX8mN1pB6cH3sJ7wE0yU5aD"  # what secret.example.yaml asks for
    monkeypatch.setattr("os.environ", {**env, "RASA_AUTH_TOKEN": token})
    settings = Settings.from_env(generate_secrets=False)
    assert settings.environment == "production", process.where
    report = review(
        settings,
        lambda host: [],  # a name would have to resolve to a private address
        rasa_only=process.kind == "rasa",
        actions_only=process.kind == "actions",
        interface=interface_argument(argv[3:]),
    )
    assert report.problems == [], process.where


def health_path(service: Service) -> str:
    return urlsplit(service.health_url).path


@pytest.mark.parametrize(
    "process",
    [*compose_processes(), *kubernetes_processes(), *dockerfile_processes()],
    ids=lambda p: p.where,
)
def test_health_checks_ask_the_real_endpoints(process: Process) -> None:
    if process.kind == "migrate":
        return
    assert process.health_paths == {health_path(local_topology()[process.kind])}, process.where


def test_ports_agree() -> None:
    """Each process listens where the others look for it."""
    by_kind: dict[str, set[int]] = {kind: set() for kind in KINDS}
    for process in [*compose_processes(), *kubernetes_processes()]:
        if "--port" in process.argv:
            port = int(process.argv[process.argv.index("--port") + 1])
            assert process.ports <= {port}, process.where
            by_kind[process.kind].add(port)
        if process.kind == "gateway":
            by_kind["gateway"].add(int(process.env.get("BOT_PORT") or 8000))
            assert process.ports <= {8000}
            rasa_ports = {urlsplit(u).port or 0 for u in process.env["RASA_URLS"].split(",")}
            by_kind["rasa-urls"] = by_kind.get("rasa-urls", set()) | rasa_ports
            by_kind["action-port"] = {int(process.env["ACTION_PORT"])}
        if process.kind == "rasa":
            by_kind["action-port"] = {urlsplit(process.env["ACTION_ENDPOINT_URL"]).port or 0}
    assert by_kind["rasa"] == by_kind["rasa-urls"] == {5005}
    assert by_kind["actions"] == by_kind["action-port"] == {5055}
    assert by_kind["gateway"] == {8000}
    services = {d["metadata"]["name"]: d for d in kubernetes_documents() if d["kind"] == "Service"}
    assert [p["port"] for p in services["rasa"]["spec"]["ports"]] == [5005]
    assert [p["port"] for p in services["actions"]["spec"]["ports"]] == [5055]
    assert [p["port"] for p in services["gateway"]["spec"]["ports"]] == [8000]
    [ingress] = [d for d in kubernetes_documents() if d["kind"] == "Ingress"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert (backend["name"], backend["port"]["number"]) == ("gateway", 8000)
    nginx = (DEPLOY / "nginx/ipbot.conf").read_text()
    assert set(re.findall(r"server gateway-\d:(\d+)", nginx)) == {"8000"}
    assert "$cookie_ipbot_session" in nginx  # the gateway's cookie name (bot/app.py)
    assert 'cookie_name="ipbot_session"' in (PROJECT_ROOT / "bot/app.py").read_text()
