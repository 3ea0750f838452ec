"""Status look-up by reference: "查询 ZX-7K3M9Q" (a lead) or "查询留言 12" (a ticket), then the last
four digits of the phone number left with it. Recognised here, before Rasa, for every channel.

Wrong digits and unknown references get the same answer (nothing is revealed), and wrong tries are
limited per conversation and per reference within a window.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.conversation.store import ChatStore
from bot.db import lookups
from bot.db.conversations import utcnow

LEAD_PATTERN = re.compile(
    r"^(?:查询进度|进度查询|查进度|查询|查)?[\s:：]*(?:编号)?[\s:：]*(ZX-[A-Z0-9]{6})(?:[\s,，]+(\d{4}))?$"
)
TICKET_PATTERN = re.compile(
    r"^(?:查询进度|查询|查进度)[\s:：]*(?:留言|工单)?[\s:：]*(?:编号)?[\s:：#]*(\d{1,9})(?:[\s,，]+(\d{4}))?$"
)
DIGITS_PATTERN = re.compile(r"^(\d{4})$")
# The digits answer a look-up asked for within this long.
PENDING_FOR = timedelta(minutes=10)
WRONG_TRIES_WINDOW = timedelta(hours=1)
MAX_WRONG_TRIES = 5
BEIJING = ZoneInfo("Asia/Shanghai")

ASK_DIGITS_TEXT = "为保护您的信息，请输入您登记时留下的手机号码（或电话号码）的后四位。"
WRONG_TEXT = "编号或号码后四位不正确，请核对后重新输入“查询 编号”。（1小时内还可尝试{left}次）"
BLOCKED_TEXT = "尝试次数过多，请1小时后再查询，或转人工由工作人员为您查询。"
STATUS_TEXT = "编号 {reference} 的办理状态：{status}。\n最近更新：{updated}"
LEAD_STATUS = {"new": "已受理，等待工作人员联系", "contacted": "已联系", "closed": "已办结"}
TICKET_STATUS = {"open": "已收到，等待工作人员回电", "called_back": "已回电", "closed": "已办结"}


def parse(text: str) -> tuple[str, str | None] | None:
    """(reference, digits or None) of a look-up request, else None. References: "ZX-…" for a
    lead, "#12" for a ticket."""
    plain = unicodedata.normalize("NFKC", text).strip().upper()
    match = LEAD_PATTERN.match(plain)
    if match:
        return match.group(1), match.group(2)
    match = TICKET_PATTERN.match(plain)
    if match:
        return f"#{int(match.group(1))}", match.group(2)
    return None


def last_digits(phone: str, count: int = 4) -> str:
    return "".join(c for c in phone if c.isdigit())[-count:]


def status_text(reference: str, found: lookups.Found) -> str:
    labels = LEAD_STATUS if found.kind == "lead" else TICKET_STATUS
    updated = found.updated_at.replace(tzinfo=timezone.utc).astimezone(BEIJING)
    shown = f"{updated.month}月{updated.day}日 {updated:%H:%M}"
    name = reference if found.kind == "lead" else f"留言{reference}"
    return STATUS_TEXT.format(reference=name, status=labels.get(found.status, found.status),
                              updated=shown)  # fmt: skip


class StatusLookups:
    def __init__(self, store: ChatStore, max_tries: int = MAX_WRONG_TRIES) -> None:
        self.store = store
        self.max_tries = max_tries

    async def answer(self, conversation_id: str, text: str) -> str | None:
        """The answer when `text` is part of a look-up, else None (the message goes to the bot)."""
        request = parse(text)
        if request is not None:
            reference, digits = request
            if digits is None:
                await self.store.run(lambda s: lookups.start_lookup(s, conversation_id, reference))
                return ASK_DIGITS_TEXT
            return await self.store.run(
                lambda s: self._check(s, conversation_id, reference, digits)
            )
        digits_match = DIGITS_PATTERN.match(unicodedata.normalize("NFKC", text).strip())
        if digits_match is None:
            return None
        return await self.store.run(
            lambda s: self._answer_digits(s, conversation_id, digits_match.group(1))
        )

    def _answer_digits(self, session: Session, conversation_id: str, digits: str) -> str | None:
        pending = lookups.pending_lookup(session, conversation_id, utcnow() - PENDING_FOR)
        if pending is None:
            return None
        return self._check(session, conversation_id, pending.reference, digits, pending.id)

    def _check(
        self,
        session: Session,
        conversation_id: str,
        reference: str,
        digits: str,
        lookup_id: int | None = None,
    ) -> str:
        if lookup_id is None:
            lookups.start_lookup(session, conversation_id, reference)
            pending = lookups.pending_lookup(session, conversation_id, datetime.min)
            assert pending is not None
            lookup_id = pending.id
        since = utcnow() - WRONG_TRIES_WINDOW
        if lookups.wrong_tries(session, conversation_id, reference, since) >= self.max_tries:
            lookups.finish_lookup(session, lookup_id, "blocked")
            return BLOCKED_TEXT
        found = lookups.find_reference(session, reference)
        if found is None or last_digits(found.phone) != digits:
            lookups.finish_lookup(session, lookup_id, lookups.WRONG)
            left = self.max_tries - lookups.wrong_tries(session, conversation_id, reference, since)
            return WRONG_TEXT.format(left=left) if left > 0 else BLOCKED_TEXT
        lookups.finish_lookup(session, lookup_id, lookups.FOUND)
        return status_text(reference, found)
