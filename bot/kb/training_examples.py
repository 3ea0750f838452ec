"""Citizen questions added as NLU training examples, in a file staff and developers can review.

The review inbox's "加入训练数据" writes `review_<intent>.yml` in the training directory
(Settings.review_training_dir, default data/nlu): Rasa's own YAML format, one intent per file,
so `rasa data validate` checks it and the next `bot train` learns from it; git shows what was
added. Nothing is written that would break training: examples already anywhere in the directory,
entity-annotation characters and personal data (phone, ID, e-mail) are left out and reported.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.domain.masking import mask
from bot.domain.vocabulary import KNOWLEDGE_TOPICS

# Intents staff may add examples to: the contract's topic intents, and out of scope.
TRAINABLE_INTENTS: dict[str, str] = {
    **{
        name: label
        for name, label in KNOWLEDGE_TOPICS.items()
        if name.startswith(("ask_", "find_", "report_"))
    },
    "out_of_scope": "超出服务范围（不属于知识产权服务）",
}
# Rasa's entity annotation ([text](entity), {"entity": …}) and YAML-significant line starts.
ANNOTATION = re.compile(r"[\[\](){}]")
MAX_EXAMPLE_CHARS = 200


class TrainingRefused(ValueError):
    """Nothing can be written (unknown intent); the text is for staff."""


@dataclass(frozen=True)
class Added:
    path: Path
    added: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (text, why), in Chinese


def file_for(directory: Path, intent: str) -> Path:
    return directory / f"review_{intent}.yml"


def known_examples(directory: Path) -> set[str]:
    """Every example text in the directory's NLU files (the same text twice confuses training)."""
    known: set[str] = set()
    for path in sorted(directory.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu") or []:
            examples = block.get("examples") if isinstance(block, dict) else None
            if isinstance(examples, str):
                known.update(_lines(examples))
    return known


def _lines(examples: str) -> list[str]:
    return [
        line.strip()[2:].strip() for line in examples.splitlines() if line.strip().startswith("- ")
    ]


def _clean(text: str) -> str:
    return " ".join(text.split())


def add_examples(directory: Path, intent: str, texts: Iterable[str]) -> Added:
    """Append the usable texts to review_<intent>.yml (created when missing), atomically."""
    if intent not in TRAINABLE_INTENTS:
        raise TrainingRefused(f"不能加入意图“{intent}”。")
    directory.mkdir(parents=True, exist_ok=True)
    path = file_for(directory, intent)
    known = known_examples(directory)
    added: list[str] = []
    skipped: list[tuple[str, str]] = []
    for raw in texts:
        text = _clean(raw)
        if not text:
            continue
        if text in known or text in added:
            skipped.append((text, "训练数据里已有"))
        elif ANNOTATION.search(text) or text.startswith(("/", "#")):
            skipped.append((text, "含有括号或特殊符号"))
        elif mask(text) != text:
            skipped.append((text, "含有电话、证件号或邮箱"))
        elif len(text) > MAX_EXAMPLE_CHARS:
            skipped.append((text, f"超过{MAX_EXAMPLE_CHARS}字"))
        else:
            added.append(text)
    if added:
        existing = _lines(_examples_of(path, intent)) if path.exists() else []
        _write(path, intent, [*existing, *added])
    return Added(path, tuple(added), tuple(skipped))


def _examples_of(path: Path, intent: str) -> str:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in document.get("nlu") or []:
        if isinstance(block, dict) and block.get("intent") == intent:
            return str(block.get("examples") or "")
    return ""


def _write(path: Path, intent: str, examples: list[str]) -> None:
    body = "".join(f"    - {text}\n" for text in examples)
    content = (
        "# Added from the review inbox (/staff/knowledge/review): citizen questions staff\n"
        "# assigned to this intent. Review before training; `rasa data validate` checks it.\n"
        'version: "3.1"\n'
        "nlu:\n"
        f"- intent: {intent}\n"
        "  examples: |\n"
        f"{body}"
    )
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(content)
    os.replace(temporary, path)
