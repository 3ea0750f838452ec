"""bot/rasa/server.py's run-time trims, in a fresh interpreter (they change the process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, os, sys
import bot.rasa.server as server
server.trim_runtime()
try:
    import jax
    jax_loaded = True
except ImportError:
    jax_loaded = False
print(json.dumps({
    "jax": jax_loaded,
    "intra": os.environ.get("TF_INTRA_OP_PARALLELISM_THREADS"),
    "inter": os.environ.get("TF_INTER_OP_PARALLELISM_THREADS"),
}))
"""


def probe(**env: str) -> dict[str, object]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_replica_skips_jax_and_uses_one_tensorflow_thread_per_pool() -> None:
    assert probe() == {"jax": False, "intra": "1", "inter": "1"}


def test_tensorflow_threads_given_by_the_deployment_are_kept() -> None:
    assert probe(TF_INTRA_OP_PARALLELISM_THREADS="2")["intra"] == "2"


def test_the_trims_can_be_turned_off_for_a_comparison() -> None:
    assert probe(RASA_RUNTIME_TRIMS="0") == {"jax": True, "intra": None, "inter": None}
