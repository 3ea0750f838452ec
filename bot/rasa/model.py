"""Train the Rasa model only when its inputs changed.

The model file is named after a fingerprint of everything that shapes it (config, domain,
training data, jieba dictionary, Rasa's version), so finding the file is enough to reuse it,
without starting Rasa (which takes ~15 s just to import).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from bot.settings import PROJECT_ROOT

MODEL_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules", "data/stories", "data/dict")
TRAINING_DATA = ("data/nlu", "data/rules", "data/stories")


def rasa_env() -> dict[str, str]:
    """Environment for every Rasa process: no telemetry (there is no internet), quiet TF."""
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256(f"rasa=={version('rasa')}".encode())
    for name in MODEL_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path(models_dir: Path, root: Path = PROJECT_ROOT) -> Path:
    return models_dir / f"ipbot-{fingerprint(root)}.tar.gz"


def ensure_trained(models_dir: Path = PROJECT_ROOT / "models", root: Path = PROJECT_ROOT) -> Path:
    """Return the model for the current data, training it first if it does not exist.

    A lock file serialises concurrent callers (two test sessions, `make run` beside `make test`),
    so the same model is never trained twice at once.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    with (models_dir / ".train.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _train_unless_present(model_path(models_dir, root), models_dir, root)


def _train_unless_present(target: Path, models_dir: Path, root: Path) -> Path:
    if target.exists():
        print(f"Model up to date: {target}")
        return target
    print("Training the Rasa model (the data or config changed) ...", flush=True)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "train",
            "--config", "config.yml",
            "--domain", "domain.yml",
            "--data", *TRAINING_DATA,
            "--out", str(models_dir),
            "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ],
        cwd=root,
        env=rasa_env(),
        check=True,
    )  # fmt: skip
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} is missing")
    print(f"Trained in {time.monotonic() - started:.0f} s: {target}", flush=True)
    return target
