"""Knowledge items in XLSX and CSV files, as staff edit them in Excel, and the history of every
change (SQLite and PostgreSQL)."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy.orm import Session

from bot.db import knowledge as db
from bot.kb.importer import ImportRejected
from bot.kb.knowledge_file import COLUMNS, export_csv, export_records, export_xlsx, import_items

ROW = {
    "key": "staff-made-window-hours",
    "topic": "ask_trademark_window",
    "question": "商标窗口几点上班？",
    "phrasings": "商标窗口几点开门\n商标窗口上班时间",
    "answer": "工作日上午9:00至下午5:00（测试数据，2026年）。",
    "details": "",
    "holds_for": "2026",
    "source_title": "测试来源",
    "source_url": "",
    "source_kind": "official",
    "last_verified": "2026-11-30",
    "unknown": "否",
    "related": "",
    "status": "published",
}


def xlsx(*rows: dict[str, str]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row.get(c, "") for c in COLUMNS])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_a_good_workbook_is_imported_and_importing_it_again_changes_nothing(
    db_session: Session,
) -> None:
    version = db.content_version(db_session)
    report = import_items(db_session, "知识.xlsx", xlsx(ROW), by="editor1")
    assert (report.inserted, report.updated, report.unchanged) == (1, 0, 0)
    [item] = db.search_items(db_session, text="staff-made-")
    assert item.phrasings == ["商标窗口几点开门", "商标窗口上班时间"]
    assert item.status == db.PUBLISHED and item.updated_by == "editor1"
    assert db.content_version(db_session) == version + 1  # the action server will notice
    again = import_items(db_session, "知识.xlsx", xlsx(ROW), by="editor1")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    assert len(db.history(db_session, item.id)) == 1
    assert db.content_version(db_session) == version + 1


def test_a_bad_workbook_is_refused_whole_with_row_numbers_and_reasons(
    db_session: Session,
) -> None:
    good = dict(ROW, key="staff-made-good")
    too_long = dict(ROW, key="staff-made-long", answer="很长" * 61)
    invented = dict(ROW, key="staff-made-unknown", unknown="是", answer="地址是测试路8号，待核实。")
    bad_topic = dict(ROW, key="Bad Key", topic="weather")
    with pytest.raises(ImportRejected) as refused:
        import_items(db_session, "坏.xlsx", xlsx(good, too_long, invented, bad_topic), by="e")
    errors = {e.line: " ".join(e.reasons) for e in refused.value.errors}
    assert set(errors) == {3, 4, 5}  # row 1 is the header, row 2 the good one
    assert "answer 超过120字" in errors[3]
    assert "不能出现数字" in errors[4]
    assert "key" in errors[5] and "topic 'weather'" in errors[5]
    assert db.search_items(db_session, text="staff-made-") == []  # not even the good row


def test_export_then_import_round_trips_in_csv_and_xlsx(db_session: Session) -> None:
    records = export_records(db_session)
    assert len(records) >= 80
    for name, data in (("all.csv", export_csv(records)), ("all.xlsx", export_xlsx(records))):
        report = import_items(db_session, name, data, by="editor1")
        assert report.unchanged == len(records) and report.updated == report.inserted == 0
    sheet = load_workbook(io.BytesIO(export_xlsx(records))).active
    assert [c.value for c in sheet[1]] == list(COLUMNS)


def test_every_edit_is_kept_and_an_earlier_text_can_be_restored(db_session: Session) -> None:
    [item] = db.search_items(db_session, text="trademark-fee-online")
    original = item.answer
    db.save_item(db_session, {"key": item.key, "answer": "每类300元（错误示例）。"}, by="editor1")
    db_session.commit()
    revisions = db.history(db_session, item.id)
    assert [r.action for r in revisions] == ["edited", "imported"]
    assert revisions[0].changed_by == "editor1"
    assert revisions[1].content["answer"] == original
    db.restore(db_session, revisions[1].id, by="editor2")
    db_session.commit()
    assert item.answer == original
    assert [r.action for r in db.history(db_session, item.id)][:1] == ["restored"]


def test_retiring_hides_an_item_from_answers_but_keeps_it(db_session: Session) -> None:
    [item] = db.search_items(db_session, text="trademark-fee-online")
    version = db.content_version(db_session)
    db.set_status(db_session, item.id, db.RETIRED, by="editor1")
    db_session.commit()
    assert item.key not in {i.key for i in db.published_items(db_session)}
    assert db.item_by_id(db_session, item.id).status == db.RETIRED
    assert db.content_version(db_session) == version + 1
