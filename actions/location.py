"""A user's shared location: message metadata (a channel's location share) or earlier slots."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from bot.kb.schema import LATITUDE_RANGE, LONGITUDE_RANGE


def _coordinates(latitude: Any, longitude: Any) -> tuple[float, float] | None:
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError):
        return None
    # Outside Ningbo the distances to Ningbo's stations mean nothing: ignore the location.
    if (
        LATITUDE_RANGE[0] <= lat <= LATITUDE_RANGE[1]
        and LONGITUDE_RANGE[0] <= lon <= LONGITUDE_RANGE[1]
    ):
        return lat, lon
    return None


def last_user_metadata(tracker: Tracker) -> dict[str, Any]:
    """Channels put metadata on the user event; older trackers lack it in latest_message."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def shared_location(tracker: Tracker) -> tuple[float, float] | None:
    """(latitude, longitude) from this message's metadata, else the latitude/longitude slots."""
    metadata = tracker.latest_message.get("metadata") or last_user_metadata(tracker)
    if not isinstance(metadata, dict):
        metadata = {}
    location = metadata.get("location")
    place: dict[str, Any] = location if isinstance(location, dict) else metadata
    found = _coordinates(place.get("latitude"), place.get("longitude"))
    if found is not None:
        return found
    return _coordinates(tracker.get_slot("latitude"), tracker.get_slot("longitude"))
