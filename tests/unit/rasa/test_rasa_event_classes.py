"""bot/rasa/server.py's event-class lookup: the same class as Rasa's own for every event type,
and Rasa's error for a name it does not know (in a fresh interpreter: it patches Rasa)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json
import rasa.core.processor  # imports Rasa's event classes as a replica has them
import rasa.shared.utils.common as common
from rasa.shared.core.events import Event, UserUttered

names = sorted({c.type_name for c in common.all_subclasses(Event)})
before = {n: Event.resolve_by_type(n).__name__ for n in names}
walks = []
walk = common.all_subclasses
common.all_subclasses = lambda cls: walks.append(cls) or walk(cls)

import bot.rasa.server as server
server.cache_event_classes()
after = {n: Event.resolve_by_type(n).__name__ for n in names}
walks.clear()
again = {n: Event.resolve_by_type(n).__name__ for n in names}
walks_again = len(walks)
try:
    Event.resolve_by_type("no_such_event")
    unknown = "resolved"
except ValueError as exc:
    unknown = str(exc)
default = Event.resolve_by_type("no_such_event", UserUttered).__name__
print(json.dumps({"before": before, "after": after, "again": again, "walks": walks_again,
                  "unknown": unknown, "default": default}))
"""


def test_event_types_resolve_as_in_rasa_without_walking_the_classes_again() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=180
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["before"]) > 20 and result["before"]["user"] == "UserUttered"
    assert result["after"] == result["before"] == result["again"]
    assert result["walks"] == 0  # the second round of look-ups is served from the dict
    assert result["unknown"] == "Unknown event name 'no_such_event'."
    assert result["default"] == "UserUttered"
