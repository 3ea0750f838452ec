"""The held-out questions: kept apart from training, and understood well enough by the model.

`make eval` measures the same holdout in detail (reports, plots, a baseline); this test guards a
floor so that a regression fails CI.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support.nlu_data import (
    HOLDOUT,
    TOPIC_INTENTS,
    TRAINING_DIR,
    counts,
    examples,
    normalised,
)
from tests.support.running_stack import RunningStack

ACCURACY_FLOOR = 0.85
DISTRICT_F1_FLOOR = 0.90


def test_holdout_never_overlaps_training() -> None:
    trained = {normalised(e.text) for e in examples(TRAINING_DIR)}
    overlap = [e.text for e in examples(HOLDOUT) if normalised(e.text) in trained]
    assert overlap == []


def test_holdout_covers_every_intent() -> None:
    held = counts(HOLDOUT)
    assert set(held) == set(counts(TRAINING_DIR))
    for intent, number in held.items():
        assert number >= (12 if intent in TOPIC_INTENTS else 5), intent


def test_training_data_is_big_enough() -> None:
    for intent, number in counts(TRAINING_DIR).items():
        assert number >= (40 if intent in TOPIC_INTENTS else 15), intent


def parse(stack: RunningStack, text: str) -> dict:
    request = urllib.request.Request(
        f"{stack.settings.rasa_url}/model/parse?token={stack.settings.rasa_auth_token}",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.e2e
def test_model_understands_the_holdout(stack: RunningStack) -> None:
    held = examples(HOLDOUT)
    correct = 0
    true_pos = false_pos = false_neg = 0
    for example in held:
        result = parse(stack, example.text)
        correct += result["intent"]["name"] == example.intent
        found = {e["value"] for e in result["entities"] if e["entity"] == "district"}
        true_pos += len(found & example.districts)
        false_pos += len(found - example.districts)
        false_neg += len(example.districts - found)
    accuracy = correct / len(held)
    district_f1 = 2 * true_pos / (2 * true_pos + false_pos + false_neg)
    print(f"holdout: intent accuracy {accuracy:.3f}, district F1 {district_f1:.3f}")
    assert accuracy >= ACCURACY_FLOOR
    assert district_f1 >= DISTRICT_F1_FLOOR
