"""The run-cluster topology from Settings (bot/ops/cluster.py, ClusterConfig.from_settings)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.ops.cluster import ClusterConfig, ClusterError
from bot.settings import ClusterSettings, Settings


def settings_with(**cluster: object) -> Settings:
    base = Settings(var_dir=Path("/nonexistent"), database_url="sqlite:///x.db")
    return replace(base, cluster=ClusterSettings(**cluster))  # type: ignore[arg-type]


def test_defaults_are_the_measured_topology() -> None:
    config = ClusterConfig.from_settings(settings_with())
    assert config == ClusterConfig()  # PostgreSQL and the local Redis, not the embedded SQLite
    assert config.database_url.startswith("postgresql://")


def test_counts_and_ports_follow_the_settings() -> None:
    settings = replace(
        settings_with(rasa_replicas=3, gateway_instances=1, database_url="postgresql://db/x"),
        rasa_port=6000,
        gateway_port=9000,
    )
    config = ClusterConfig.from_settings(settings)
    assert config.rasa_ports == (6000, 6001, 6002) and config.gateway_ports == (9000,)
    assert config.database_url == "postgresql://db/x"


def test_lock_keys_follow_the_redis_namespace_unless_given() -> None:
    """Deployments sharing a Redis lock apart too (Rasa takes letters and digits only)."""
    shared = replace(settings_with(), redis_namespace="ipbot-staging_2")
    assert ClusterConfig.from_settings(shared).lock_key_prefix == "ipbotstaging2"
    given = replace(settings_with(lock_key_prefix="nlu"), redis_namespace="ipbot-staging")
    assert ClusterConfig.from_settings(given).lock_key_prefix == "nlu"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rasa_replicas": 0}, "RASA_REPLICAS must be at least 1, got 0"),
        ({"rasa_sql_max_overflow": -1}, "RASA_SQL_MAX_OVERFLOW must be at least 0, got -1"),
        ({"lock_key_prefix": "ip-bot"}, "RASA_LOCK_KEY_PREFIX must be letters and digits"),
    ],
)
def test_unusable_values_are_refused_by_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ClusterError, match=message):
        ClusterConfig.from_settings(settings_with(**changes))
