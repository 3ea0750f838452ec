"""Training examples from the review inbox (bot.kb.training_examples), in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.kb.training_examples import TrainingRefused, add_examples


def test_examples_are_appended_once_and_unusable_texts_are_reported(tmp_path: Path) -> None:
    (tmp_path / "topic.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: ask_ip_insurance\n  examples: |\n    - 有没有专利保险\n',
        encoding="utf-8",
    )
    first = add_examples(tmp_path, "ask_ip_insurance", ["保险怎么 买", "有没有专利保险", "[x](y)"])
    second = add_examples(
        tmp_path, "ask_ip_insurance", ["保险怎么 买", "我的电话13912345678", "海外侵权险保什么"]
    )
    assert first.added == ("保险怎么 买",) and second.added == ("海外侵权险保什么",)
    assert [why for _, why in first.skipped] == ["训练数据里已有", "含有括号或特殊符号"]
    assert [why for _, why in second.skipped] == ["训练数据里已有", "含有电话、证件号或邮箱"]
    document = yaml.safe_load(first.path.read_text(encoding="utf-8"))
    assert document["nlu"] == [
        {"intent": "ask_ip_insurance", "examples": "- 保险怎么 买\n- 海外侵权险保什么\n"}
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "review_ask_ip_insurance.yml",
        "topic.yml",
    ]


def test_only_topic_intents_and_out_of_scope_can_be_trained(tmp_path: Path) -> None:
    with pytest.raises(TrainingRefused):
        add_examples(tmp_path, "request_human", ["转人工"])
    assert add_examples(tmp_path, "out_of_scope", ["社保怎么交"]).added == ("社保怎么交",)
