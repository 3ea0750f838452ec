"""The set-up machinery: finding Python 3.10, and retraining only when the data changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bot.rasa.model import MODEL_INPUTS, fingerprint
from bot.settings import PROJECT_ROOT


def make_venv(tmp_path: Path, python: str) -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "venv"
    return subprocess.run(
        ["make", "-s", f"VENV={venv}", f"PYTHON={python}", f"{venv}/bin/python"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_a_wrong_python_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = make_venv(tmp_path, "/usr/bin/false")
    assert result.returncode != 0
    assert "PYTHON=/usr/bin/false is not a working Python 3.10" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_fingerprint_follows_training_inputs_only(tmp_path: Path) -> None:
    for name in (*MODEL_INPUTS, "data/kb"):
        source = PROJECT_ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        copy(source, tmp_path / name)
    original = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == original == fingerprint(PROJECT_ROOT)

    (tmp_path / "data/kb/service_points.yml").write_text("service_points: []\n")
    assert fingerprint(tmp_path) == original  # the knowledge base is not training data

    with (tmp_path / "data/dict/ip_terms.txt").open("a") as dictionary:
        dictionary.write("新词条 10 n\n")
    assert fingerprint(tmp_path) != original
