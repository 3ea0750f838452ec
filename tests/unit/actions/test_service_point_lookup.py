"""The service-point lookup against the seed data, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.db.models import ServicePoint
from bot.db.service_points import LookupStatus, lookup_service_points
from bot.kb.seed import SEED_DIR, read_service_points, upsert_service_points

STATION = "商标品牌指导站"


def names(points: list[ServicePoint]) -> set[str]:
    return {p.name for p in points}


def test_district_with_a_station(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, "慈溪市")
    assert lookup.status is LookupStatus.FOUND
    assert lookup.district == "慈溪市"
    assert names(lookup.points) == {"慈溪市周巷镇品牌建设工作指导站"}
    # Unknown details stay unknown: nothing was invented for the seed record.
    assert lookup.points[0].address is None and lookup.points[0].phone is None


def test_short_form_maps_to_the_district(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, "北仑")
    assert lookup.status is LookupStatus.FOUND
    assert lookup.district == "北仑区"
    assert names(lookup.points) == {"北仑区小港街道品牌指导站", "北仑区新碶街道品牌指导站"}


def test_district_without_a_station_offers_the_rest_of_the_city(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, "鄞州区")
    assert lookup.status is LookupStatus.NONE_IN_DISTRICT
    assert lookup.district == "鄞州区"
    assert lookup.points == []
    assert "宁波市知识产权协会品牌指导服务站" in names(lookup.elsewhere)
    assert all(p.service_type == STATION for p in lookup.elsewhere)


def test_unknown_district(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, "杭州")
    assert lookup.status is LookupStatus.UNKNOWN_DISTRICT
    assert lookup.district is None and lookup.points == []


def test_sql_in_a_district_name_is_just_an_unknown_district(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, "鄞州'; DROP TABLE service_points; --")
    assert lookup.status is LookupStatus.UNKNOWN_DISTRICT
    assert db_session.execute(select(func.count()).select_from(ServicePoint)).scalar_one() > 0


def test_no_district_lists_the_whole_city(db_session) -> None:
    lookup = lookup_service_points(db_session, STATION, None)
    assert lookup.status is LookupStatus.CITYWIDE
    assert len(lookup.points) == 5


def test_seeding_twice_changes_nothing(db_session) -> None:
    records = read_service_points(SEED_DIR / "service_points.yml")
    assert upsert_service_points(db_session, records) == 0
