"""Every tests/test_stories*.yml conversation, checked by Rasa's own `rasa test core`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.rasa.model import rasa_env
from bot.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
RESULTS = PROJECT_ROOT / "results" / "stories"


def test_test_stories_pass(trained_model: Path, tmp_path: Path) -> None:
    stories = sorted((PROJECT_ROOT / "tests").glob("test_stories*.yml"))
    assert stories, "no test stories found"
    for story_file in stories:  # one directory, so the model is loaded once
        shutil.copy(story_file, tmp_path / story_file.name)
    result = subprocess.run(
        [
            sys.executable, "-m", "rasa", "test", "core",
            "--model", str(trained_model),
            "--stories", str(tmp_path),
            "--out", str(RESULTS),
            "--fail-on-prediction-errors",
        ],
        cwd=PROJECT_ROOT,
        env=rasa_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    failed = RESULTS / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else result.stdout[-3000:]
    assert result.returncode == 0, f"test stories failed:\n{details}\n{result.stderr[-2000:]}"
