"""`make eval-dialogue`: do multi-turn conversations hold? (forms left and resumed, follow-ups,
districts, two questions in one, nonsense, small talk, the rating offer).

Starts the real stack (action server, Rasa, gateway) on a seeded SQLite database, plays every
conversation of bench/dialogue_conversations.yml through the web chat's websocket and checks
each turn on content. Prints the share of conversations that hold (target ≥ 0.95) and the
failing turns. `--baseline REV` also plays them against the code, data and model of a git
revision (its files exported to a temporary directory; its model trained there unless
`--baseline-model` gives it), and prints both figures.

    .venv/bin/python bench/eval_dialogue.py [--url http://127.0.0.1:8080] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import PROJECT_ROOT

CONVERSATIONS = Path(__file__).resolve().parent / "dialogue_conversations.yml"
TARGET = 0.95
REPLY_SECONDS = 40  # a first knowledge question may wait for the embedding model
QUIET_SECONDS = 4  # after a hand-off no "typing off" comes: the reply is what came by then
PARALLEL = 3


@dataclass
class Outcome:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.failures


def reply_view(frames: list[dict[str, Any]]) -> str:
    """Everything the citizen sees of a reply: texts, button titles, cards, custom payloads."""
    parts: list[str] = []
    for frame in frames:
        parts.append(frame.get("text") or "")
        parts += [b.get("title", "") for b in frame.get("buttons") or []]
        if frame.get("custom") is not None:
            parts.append(json.dumps(frame["custom"], ensure_ascii=False))
        if frame.get("type") == "handoff":
            parts.append("handoff")
    return "\n".join(parts)


def check_turn(turn: dict[str, Any], frames: list[dict[str, Any]]) -> list[str]:
    view = reply_view(frames)
    has, any_of, lacks = ([str(s) for s in turn.get(k, [])] for k in ("has", "any", "lacks"))
    problems = [f"missing {s!r}" for s in has if s not in view]
    if any_of and not any(s in view for s in any_of):
        problems.append(f"none of {any_of!r}")
    problems += [f"unwanted {s!r}" for s in lacks if s in view]
    rating = turn.get("rating")
    # The gateway turns the bot's rating request into a card frame (bot/conversation/ratings.py).
    offered = [f.get("trigger") for f in frames if f.get("type") == "rating_request"]
    if rating == "none" and offered:
        problems.append(f"rating offered after {offered}")
    elif rating and rating != "none" and offered != [rating]:
        problems.append(f"rating {offered} instead of [{rating!r}]")
    return problems


async def exchange(ws: aiohttp.ClientWebSocketResponse, turn: dict[str, Any]) -> list[dict]:
    frame: dict[str, Any] = {"type": "message", "id": os.urandom(8).hex(), "text": str(turn["say"])}
    if turn.get("payload"):
        frame["payload"] = turn["payload"]
    await ws.send_json(frame)
    answer: list[dict[str, Any]] = []
    deadline = time.monotonic() + REPLY_SECONDS
    while time.monotonic() < deadline:
        wait = QUIET_SECONDS if any(f.get("type") == "handoff" for f in answer) else REPLY_SECONDS
        try:
            received = await ws.receive_json(timeout=wait)
        except (TimeoutError, asyncio.TimeoutError):
            break
        if received == {"type": "typing", "on": False}:
            break
        if received.get("type") not in ("typing", "ack"):
            answer.append(received)
    return answer


async def play(gateway: str, conversation: dict[str, Any], gate: asyncio.Semaphore) -> Outcome:
    outcome = Outcome(conversation["name"])
    async with gate, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(gateway + "/") as page:  # the session cookie: a new conversation
            page.raise_for_status()
        async with http.ws_connect(gateway + "/ws") as ws:
            await ws.receive_json(timeout=REPLY_SECONDS)  # the history frame
            for number, turn in enumerate(conversation["turns"], 1):
                frames = await exchange(ws, turn)
                for problem in check_turn(turn, frames):
                    said = reply_view(frames).replace("\n", " / ")[:160]
                    outcome.failures.append(f"turn {number} {turn['say']!r}: {problem} — {said}")
                if outcome.failures:
                    break  # the rest of a broken conversation says nothing more
    return outcome


async def play_all(gateway: str, conversations: list[dict[str, Any]]) -> list[Outcome]:
    gate = asyncio.Semaphore(PARALLEL)
    return list(await asyncio.gather(*(play(gateway, c, gate) for c in conversations)))


def report(label: str, outcomes: list[Outcome]) -> float:
    held = sum(o.holds for o in outcomes) / len(outcomes)
    print(f"\n{label}: {sum(o.holds for o in outcomes)}/{len(outcomes)} conversations hold = "
          f"{held:.3f} (target ≥ {TARGET})")  # fmt: skip
    for outcome in outcomes:
        for failure in outcome.failures:
            print(f"  ✗ {outcome.name}: {failure}")
    return held


def run_on_own_stack(conversations: list[dict[str, Any]], model: Path | None) -> list[Outcome]:
    from bot.db.engine import session_factory
    from bot.db.migrate import upgrade
    from bot.kb.seed import seed_if_empty
    from bot.knowledge.embed import DEFAULT_CACHE, Embedder
    from bot.knowledge.live import warm_up
    from bot.rasa.model import ensure_trained
    from tests.support.running_stack import RunningStack

    model = model or ensure_trained()
    var_dir = Path(tempfile.mkdtemp(prefix="eval-dialogue-"))
    database_url = f"sqlite:///{var_dir / 'ipbot.db'}"
    upgrade(database_url)
    with session_factory(database_url)() as session:
        seed_if_empty(session)
    warm_up(database_url, Embedder(DEFAULT_CACHE))
    stack = RunningStack.on_free_ports(var_dir, database_url, model)
    try:
        stack.start()
        return asyncio.run(play_all(stack.gateway_url, conversations))
    finally:
        stack.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def run_baseline(revision: str, model: Path | None) -> None:
    """This script on an export of `revision` (its code, data and model), with today's
    conversations: the figure before the change."""
    root = Path(tempfile.mkdtemp(prefix="eval-dialogue-base-"))
    try:
        archive = subprocess.run(
            ["git", "archive", revision], cwd=PROJECT_ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        (root / "bench").mkdir(exist_ok=True)
        shutil.copy(__file__, root / "bench" / "eval_dialogue.py")
        shutil.copy(CONVERSATIONS, root / "bench" / "dialogue_conversations.yml")
        for support in ("__init__.py", "support"):
            if not (root / "tests" / support).exists():
                shutil.copytree(PROJECT_ROOT / "tests" / support, root / "tests" / support)
        argv = [sys.executable, str(root / "bench" / "eval_dialogue.py"), "--label", "baseline"]
        if model is not None:
            argv += ["--model", str(model.resolve())]
        env = {**os.environ, "PYTHONPATH": str(root)}
        subprocess.run(argv, cwd=root, env=env, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running gateway instead of starting the stack")
    parser.add_argument("--model", type=Path, help="default: the model for the current data")
    parser.add_argument("--only", help="the conversations whose name contains this")
    parser.add_argument("--baseline", metavar="REV", help="also play them on this revision")
    parser.add_argument("--baseline-model", type=Path, help="the baseline revision's model")
    parser.add_argument("--label", default="this branch")
    args = parser.parse_args()
    conversations = yaml.safe_load(CONVERSATIONS.read_text("utf-8"))["conversations"]
    if args.only:
        conversations = [c for c in conversations if args.only in c["name"]]
    if args.baseline:
        run_baseline(args.baseline, args.baseline_model)
    if args.url:
        outcomes = asyncio.run(play_all(args.url.rstrip("/"), conversations))
    else:
        outcomes = run_on_own_stack(conversations, args.model)
    held = report(args.label, outcomes)
    sys.exit(0 if held >= TARGET or args.label == "baseline" else 1)


if __name__ == "__main__":
    main()
