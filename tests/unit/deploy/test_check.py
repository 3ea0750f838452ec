"""deploy/check.py (`make lint`, which runs it on the real files) rejects a broken copy of each."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", DEPLOY / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check = load_check()


def broken_copy(tmp_path: Path, relative: str, old: str, new: str) -> Path:
    target = tmp_path / Path(relative).name
    text = (DEPLOY / relative).read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    return target


def test_a_bad_dockerfile_is_rejected(tmp_path: Path) -> None:
    bad = broken_copy(
        tmp_path, "docker/gateway.Dockerfile", "python:3.11.10-slim-bookworm AS", "python AS"
    )
    [problem] = check.check_dockerfiles([bad])
    assert "DL3006" in problem  # an untagged base image


def test_an_unknown_kubernetes_field_is_rejected(tmp_path: Path) -> None:
    shutil.copytree(DEPLOY / "kubernetes", tmp_path / "k8s")
    path = tmp_path / "k8s/gateway.yaml"
    path.write_text(path.read_text().replace("  replicas: 2", "  replica: 2", 1))
    (tmp_path / "k8s/kustomization.yaml").write_text("resources: [gateway.yaml, gone.yaml]\n")
    problems = check.check_kubernetes(tmp_path / "k8s")
    assert len(problems) == 2
    assert "'replica' was unexpected" in problems[0]
    assert "gone.yaml does not exist" in problems[1]


def test_a_bad_compose_file_is_rejected(tmp_path: Path) -> None:
    bad = broken_copy(
        tmp_path, "compose.yaml", "{condition: service_healthy}", "{condition: when_healthy}"
    )
    bad.write_text(bad.read_text().replace("${SESSION_SECRET:?", "${SESSION_KEY:?", 1))
    bad.write_text(bad.read_text().replace("- pgdata:/var", "- pg-data:/var", 1))
    problems = check.check_compose(bad, DEPLOY / "env.example", DEPLOY / "schema/compose-spec.json")
    joined = "\n".join(problems)
    assert "${SESSION_KEY} is not in env.example" in joined
    assert "postgres mounts pg-data, not a declared volume" in joined
    assert "depends_on" in joined  # the schema: no such condition


def test_a_bad_nginx_directive_is_rejected(tmp_path: Path) -> None:
    bad = broken_copy(tmp_path, "nginx/ipbot.conf", "keepalive 32;", "keepalive;")
    [problem] = check.check_nginx(bad)
    assert 'invalid number of arguments in "keepalive"' in problem


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_a_misspelt_unit_setting_is_rejected(tmp_path: Path) -> None:
    bad = broken_copy(
        tmp_path, "systemd/ipbot-actions.service", "NoNewPrivileges=", "NoNewPrivilege="
    )
    [problem] = check.check_systemd([bad])
    assert "Unknown key 'NoNewPrivilege'" in problem
