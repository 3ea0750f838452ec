"""The insurance consultation form's actions with a real database: validation, buttons, leads."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select, text

from actions.consultation import (
    ActionAskProductsOfInterest,
    ActionSubmitConsultation,
    ValidateInsuranceConsultationForm,
    products_in_text,
)
from bot.db.engine import session_factory
from bot.db.leads import lead_by_reference
from bot.db.models import ConsultationRequest
from bot.domain.phone import contact_phone_problem, is_contact_phone
from tests.support.action_trackers import run, slot_events, texts, tracker

pytestmark = pytest.mark.usefixtures("actions_database_url")
FORM = "insurance_consultation_form"
HUMAN = {"title": "转人工", "payload": "/request_human"}


def form_turn(slot: str, value: str) -> object:
    """The tracker the validation action sees: Rasa appended the extracted slot candidate."""
    return tracker(
        "inform",
        text=value,
        slots={"requested_slot": slot, slot: value},
        events=[
            {"event": "user", "text": value},
            {"event": "slot", "name": slot, "value": value},
        ],
        active_loop=FORM,
    )


@pytest.mark.parametrize(
    "number", ["13812345678", "19957412345", "0574-87654321", "057487654321", "010-12345678"]
)
def test_valid_phone_numbers(number: str) -> None:
    assert is_contact_phone(number) and contact_phone_problem(number) is None


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1381234", "手机号应为11位，您输入的是7位"),
        ("12812345678", "第二位应为3至9"),
        ("87654321", "号码格式不对"),
        ("0574-123", "固定电话应带区号"),
        ("没有电话", "没有数字"),
    ],
)
def test_invalid_phone_numbers_have_a_reason(number: str, reason: str) -> None:
    assert not is_contact_phone(number)
    assert reason in contact_phone_problem(number)


async def test_wrong_phone_is_rejected_with_the_reason() -> None:
    messages, events = await run(ValidateInsuranceConsultationForm(), form_turn("phone", "1381234"))
    assert slot_events(events) == {"phone": None}
    assert "这个号码好像不对：手机号应为11位，您输入的是7位" in texts(messages)


async def test_phone_with_spaces_is_normalised() -> None:
    _, events = await run(ValidateInsuranceConsultationForm(), form_turn("phone", "138 1234 5678"))
    assert slot_events(events)["phone"] == "13812345678"


async def test_company_name_is_kept_exactly_as_typed() -> None:
    value = "<b>宁波</b>'; DROP TABLE consultation_requests; --"
    _, events = await run(ValidateInsuranceConsultationForm(), form_turn("company_name", value))
    assert slot_events(events)["company_name"] == value


def test_products_typed_in_words() -> None:
    assert products_in_text("马德里的那个") == ["商标申请费用损失补偿保险"]
    assert products_in_text("专利侵权和海外的") == ["专利被侵权损失保险", "海外侵权责任保险"]
    assert products_in_text("都想了解") == ["全部险种"]
    assert products_in_text("汽车保险") == []


async def test_products_button_and_unknown_text() -> None:
    form = ValidateInsuranceConsultationForm()
    _, events = await run(form, form_turn("products_of_interest", "地理标志保险"))
    assert slot_events(events)["products_of_interest"] == "地理标志保险"
    messages, events = await run(form, form_turn("products_of_interest", "车险"))
    assert slot_events(events)["products_of_interest"] is None
    assert "没有识别出" in texts(messages)


async def test_products_question_has_a_button_per_product_in_the_database() -> None:
    messages, _ = await run(ActionAskProductsOfInterest(), tracker("inform", active_loop=FORM))
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert titles[0] == "专利被侵权损失保险" and titles[-1] == "都想了解"
    assert len(titles) == 9  # 8 seeded products + "都想了解"
    assert messages[0]["buttons"][0]["payload"] == '/inform{"insurance_type": "专利被侵权损失保险"}'


def filled(**overrides: str) -> dict[str, str]:
    slots = {
        "company_name": "宁波甬新电子有限公司",
        "contact_name": "王先生",
        "phone": "13812345678",
        "products_of_interest": "专利被侵权损失保险",
    }
    return {**slots, **overrides}


async def test_submit_stores_a_lead_and_shows_its_reference(actions_database_url: str) -> None:
    messages, events = await run(ActionSubmitConsultation(), tracker("inform", slots=filled()))
    match = re.search(r"编号 (ZX-[2-9A-Z]{6})", messages[0]["text"])
    assert match, messages
    # The status look-up's button: its title is sent as text ("查询 ZX-…").
    assert messages[0]["buttons"] == [{"title": f"查询 {match.group(1)}", "payload": ""}]
    with session_factory(actions_database_url)() as session:
        lead = lead_by_reference(session, match.group(1))
    assert lead is not None
    assert (lead.company, lead.contact_name, lead.phone) == (
        "宁波甬新电子有限公司",
        "王先生",
        "13812345678",
    )
    assert lead.products == "专利被侵权损失保险" and lead.status == "new"
    assert lead.conversation_id == "test-user" and lead.created_at is not None
    # The form's slots are cleared, so the details do not linger in the conversation.
    assert slot_events(events) == dict.fromkeys(filled())


async def test_sql_html_and_long_text_are_stored_and_shown_as_plain_text(
    actions_database_url: str,
) -> None:
    company = "<script>alert('x')</script>'); DROP TABLE consultation_requests; --" + "长" * 3000
    name = "<img src=x onerror=alert(1)>"
    messages, _ = await run(
        ActionSubmitConsultation(),
        tracker("inform", slots=filled(company_name=company, contact_name=name)),
    )
    reply = messages[0]["text"]
    assert "联系人：<img src=x onerror=alert(1)>" in reply  # as typed, not escaped or rendered
    assert "公司：<script>alert('x')</script>" in reply and "…" in reply  # long text is cut
    assert len(reply) < 400
    with session_factory(actions_database_url)() as session:
        [lead] = session.execute(select(ConsultationRequest)).scalars().all()
    assert lead.company == company and lead.contact_name == name  # stored whole


async def test_incomplete_form_stores_nothing(actions_database_url: str) -> None:
    messages, _ = await run(ActionSubmitConsultation(), tracker("inform", slots=filled(phone="")))
    assert "没有保存" in messages[0]["text"]
    with session_factory(actions_database_url)() as session:
        assert session.execute(select(ConsultationRequest)).first() is None


async def test_dead_database_on_submit_apologises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    messages, _ = await run(ActionSubmitConsultation(), tracker("inform", slots=filled()))
    assert "暂时无法保存" in messages[0]["text"] and messages[0]["buttons"] == [HUMAN]


async def test_slow_database_on_submit_apologises_in_time(
    actions_database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A writer holding the table lock makes the insert wait; the action gives up on time."""
    monkeypatch.setenv("DB_TIMEOUT", "0.5")
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        with session_factory(actions_database_url)() as session:
            if session.bind.dialect.name == "sqlite":
                session.execute(text("BEGIN EXCLUSIVE"))
            else:
                session.execute(text("LOCK TABLE consultation_requests IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(10)
            session.rollback()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        messages, _ = await run(ActionSubmitConsultation(), tracker("inform", slots=filled()))
    finally:
        release.set()
        holder.join()
    assert "暂时无法保存" in messages[0]["text"] and messages[0]["buttons"] == [HUMAN]
    assert "knowledge base query failed" in caplog.text
