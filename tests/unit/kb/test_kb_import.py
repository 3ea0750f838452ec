"""`kb import` / `kb export` with good and bad files, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.__main__ import main
from bot.db.engine import session_factory
from bot.db.models import InsuranceProduct, ServicePoint
from bot.kb.exporter import export_csv, export_yaml
from bot.kb.importer import ImportRejected, import_file

GOOD_CSV = "\n".join(
    [
        "service_type,name,district,address,latitude,longitude,opening_hours,phone,services,"
        "source,last_verified",
        "商标品牌指导站,鄞州区测试品牌指导站,鄞州,宁波市鄞州区测试路1号,29.82,121.55,"
        "工作日 9:00-17:00,0574-87654321,商标注册指导,区市场监管局 2026-11-01 核实,2026-11-01",
        "商标品牌指导站,余姚市测试品牌指导站,余姚市,,,,,,,区市场监管局,",
        "",
    ]
)

GOOD_YAML = """service_points:
  - service_type: 知识产权综合体
    name: 测试综合体
    district: 海曙区
    latitude: 29.87
    longitude: 121.54
    phone: "13812345678"
    source: 测试数据
insurance_products:
  - insurance_type: 专利执行保险
    name: 测试专利执行保险
    coverage: 调查取证和诉讼费用
    premium: null
    source: 测试数据
"""

BAD_CSV = """service_type,name,district,latitude,longitude,phone,source
商标品牌指导站,好站,鄞州区,29.8,121.5,0574-87654321,测试
商标品牌指导站,,杭州,40.1,121.5,12,测试
快递站,坏站,鄞州区,29.8,,abc,
商标品牌指导站,好站,鄞州区,29.8,121.5,,测试
"""


def count(url: str, model: type) -> int:
    with session_factory(url)() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_csv_is_imported_with_canonical_districts(database_url: str, tmp_path: Path) -> None:
    with session_factory(database_url)() as session:
        report = import_file(session, write(tmp_path, "good.csv", GOOD_CSV))
    assert (report.rows, report.inserted) == (2, 2)
    with session_factory(database_url)() as session:
        station = session.execute(
            select(ServicePoint).where(ServicePoint.name == "鄞州区测试品牌指导站")
        ).scalar_one()
        empty = session.execute(
            select(ServicePoint).where(ServicePoint.name == "余姚市测试品牌指导站")
        ).scalar_one()
    assert station.district == "鄞州区"  # short form mapped to the canonical name
    assert (station.latitude, station.longitude) == (29.82, 121.55)
    assert station.last_verified == dt.date(2026, 11, 1)
    # Blank cells stay unknown (NULL), never an empty string the bot would show as a fact.
    assert empty.address is None and empty.phone is None and empty.latitude is None


def test_importing_twice_changes_nothing(database_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "good.csv", GOOD_CSV)
    with session_factory(database_url)() as session:
        import_file(session, path)
    with session_factory(database_url)() as session:
        again = import_file(session, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert count(database_url, ServicePoint) == 2


def test_changed_row_is_updated_by_natural_key(database_url: str, tmp_path: Path) -> None:
    with session_factory(database_url)() as session:
        import_file(session, write(tmp_path, "a.csv", GOOD_CSV))
    changed = GOOD_CSV.replace("0574-87654321", "0574-87650000")
    with session_factory(database_url)() as session:
        report = import_file(session, write(tmp_path, "b.csv", changed))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    with session_factory(database_url)() as session:
        phones = session.execute(select(ServicePoint.phone)).scalars().all()
    assert "0574-87650000" in phones and count(database_url, ServicePoint) == 2


def test_good_yaml_imports_service_points_and_products(database_url: str, tmp_path: Path) -> None:
    with session_factory(database_url)() as session:
        report = import_file(session, write(tmp_path, "good.yml", GOOD_YAML))
    assert report.by_kind == {"service_points": 1, "insurance_products": 1}
    assert count(database_url, InsuranceProduct) == 1


def test_bad_csv_is_rejected_whole_with_each_line_and_reason(
    database_url: str, tmp_path: Path
) -> None:
    with session_factory(database_url)() as session, pytest.raises(ImportRejected) as caught:
        import_file(session, write(tmp_path, "bad.csv", BAD_CSV))
    errors = {e.line: " | ".join(e.reasons) for e in caught.value.errors}
    assert sorted(errors) == [3, 4, 5]
    assert "name is required" in errors[3]
    assert "'杭州' is not one of" in errors[3]
    assert "latitude 40.1 is outside Ningbo" in errors[3]
    assert "phone '12' is not a mainland phone number" in errors[3]
    assert "unknown service_type '快递站'" in errors[4]
    assert "latitude and longitude must be given together" in errors[4]
    assert "source is required" in errors[4]
    assert "duplicate of line 2" in errors[5]
    # The good row of the same file was not written either.
    assert count(database_url, ServicePoint) == 0


def test_bad_yaml_reports_the_line_of_the_row(database_url: str, tmp_path: Path) -> None:
    text = GOOD_YAML.replace("longitude: 121.54", "longitude: 12.154").replace(
        "insurance_type: 专利执行保险", "insurance_type: 汽车保险"
    )
    with session_factory(database_url)() as session, pytest.raises(ImportRejected) as caught:
        import_file(session, write(tmp_path, "bad.yml", text))
    errors = {e.line: " | ".join(e.reasons) for e in caught.value.errors}
    assert sorted(errors) == [2, 10]
    assert "longitude 12.154 is outside Ningbo" in errors[2]
    assert "unknown insurance_type '汽车保险'" in errors[10]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("notes.txt", "hello", "unsupported file type"),
        ("nokey.csv", "name,source\n站,测试\n", "service_type or insurance_type column"),
        ("list.yml", "- a\n- b\n", "expected a mapping"),
        ("section.yml", "stations: []\n", "unknown section 'stations'"),
    ],
)
def test_unreadable_files_are_rejected(
    database_url: str, tmp_path: Path, name: str, text: str, message: str
) -> None:
    with session_factory(database_url)() as session, pytest.raises(ImportRejected, match=message):
        import_file(session, write(tmp_path, name, text))


def test_export_reimports_unchanged(seeded_database_url: str, tmp_path: Path) -> None:
    url = seeded_database_url
    with session_factory(url)() as session:
        import_file(session, write(tmp_path, "good.csv", GOOD_CSV))
        yaml_text = export_yaml(session)
        csv_text = export_csv(session, "service_points")
    assert csv_text.splitlines()[0].startswith("service_type,name,district,address")
    assert "鄞州区测试品牌指导站" in csv_text and "source: 据公开报道（新闻）" in yaml_text
    with session_factory(url)() as session:
        from_yaml = import_file(session, write(tmp_path, "export.yml", yaml_text))
        from_csv = import_file(session, write(tmp_path, "export.csv", csv_text))
    assert from_yaml.inserted == from_yaml.updated == 0 and from_yaml.unchanged == 19
    assert from_csv.inserted == from_csv.updated == 0 and from_csv.unchanged == 11


def test_large_file_shows_a_progress_bar(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"商标品牌指导站,批量站{i:04d},北仑区,测试数据" for i in range(250)]
    path = write(tmp_path, "big.csv", "service_type,name,district,source\n" + "\n".join(rows))
    with session_factory(database_url)() as session:
        report = import_file(session, path, show_progress=True)
    assert report.inserted == 250
    assert "importing" in capsys.readouterr().err and count(database_url, ServicePoint) == 250


def test_command_line_import_export(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["kb", "import", str(write(tmp_path, "good.csv", GOOD_CSV))]) == 0
    assert "2 rows: 2 added" in capsys.readouterr().out
    assert main(["kb", "import", str(write(tmp_path, "bad.csv", BAD_CSV))]) == 1
    err = capsys.readouterr().err
    assert "nothing was imported" in err and "line 3:" in err and "line 5:" in err
    out = tmp_path / "out.csv"
    assert main(["kb", "export", "-o", str(out)]) == 0
    assert "鄞州区测试品牌指导站" in out.read_text(encoding="utf-8")
    assert main(["db", "upgrade"]) == 0
