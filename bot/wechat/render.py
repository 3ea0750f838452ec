"""Frames of the conversation protocol as the plain text a WeChat chat can show.

WeChat text messages have no buttons or cards: buttons become numbered options ("回复数字：1. …")
that the user answers with a bare number, cards become short text blocks, and long answers are
split into messages of at most 2048 bytes (WeChat's limit for a text message).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply

from bot.conversation.frames import HOT_QUESTIONS, WELCOME_TEXT
from bot.domain.vocabulary import REQUEST_HUMAN

TEXT_LIMIT_BYTES = 2048
UNVERIFIED = "待核实"
BLOCK_SEPARATOR = "\n\n"
RATING_PROMPT = (
    "本次人工服务已结束，请回复数字为我们的服务评分：\n"
    "5. 非常满意\n4. 满意\n3. 基本满意\n2. 不满意\n1. 非常不满意"
)
# The bot-only rating (a conversation without a person), as numbers: one message of the quota.
BOT_RATING_PROMPT = (
    "请为本次咨询服务评分，回复数字：\n5. 非常满意\n4. 满意\n3. 基本满意\n2. 不满意\n1. 非常不满意"
)
UNSUPPORTED_TEXT = (
    "抱歉，我暂时只能看懂文字消息和位置。请用文字描述您的问题，"
    "或点击输入框旁的“+”发送“位置”，我帮您找最近的商标品牌指导站。"
)
# A bare option number: "2", "２", " 3. ", "4、"
CHOICE_PATTERN = re.compile(r"^\s*([0-9０-９]{1,2})\s*[.。、．]?\s*$")
BOLD_PATTERN = re.compile(r"\*\*(.+?)\*\*")


@dataclass(frozen=True)
class Option:
    title: str
    payload: str  # "" means: send the title as typed text (the welcome's hot questions)


class Numbering:
    """Numbers the options of one answer consecutively, across the frames it is delivered in."""

    def __init__(self) -> None:
        self.next = 1

    def take(self, count: int) -> int:
        first = self.next
        self.next += count
        return first


def plain(text: str) -> str:
    """Bot text as WeChat shows it: no markdown bold markers."""
    return BOLD_PATTERN.sub(r"\1", text).strip()


def value(raw: Any) -> str:
    return UNVERIFIED if raw is None or raw == "" else str(raw)


def service_point_block(item: dict[str, Any]) -> str:
    lines = [f"【{value(item.get('name'))}】"]
    if isinstance(item.get("distance_km"), (int, float)):
        lines.append(f"距离：约{item['distance_km']}公里")
    district = item.get("district") or "全市"
    address = item.get("address")
    lines.append(f"地址：{district}{'，' + address if address else '，地址待核实'}")
    lines.append(f"开放时间：{value(item.get('opening_hours'))}")
    lines.append(f"电话：{value(item.get('phone'))}")
    return "\n".join(lines)


def insurance_block(item: dict[str, Any]) -> str:
    lines = [f"【{value(item.get('name'))}】"]
    if item.get("insurance_type") and item.get("insurance_type") != item.get("name"):
        lines.append(f"险种：{item['insurance_type']}")
    for label, key in (
        ("保障内容", "coverage"),
        ("适用对象", "audience"),
        ("保障额度", "limits"),
        ("保费", "premium"),
        ("承保机构", "insurer"),
    ):
        lines.append(f"{label}：{value(item.get(key))}")
    lines.append(f"来源：{value(item.get('source'))}")
    return "\n".join(lines)


CARD_RENDERERS = {"service_points": service_point_block, "insurance_products": insurance_block}


def card_blocks(custom: Any) -> list[str]:
    if not isinstance(custom, dict) or not isinstance(custom.get("items"), list):
        return []
    render = CARD_RENDERERS.get(str(custom.get("kind")))
    if render is None:
        return []  # a kind this channel does not know: the frame's text stands alone
    return [render(item) for item in custom["items"] if isinstance(item, dict)]


def buttons_of(frame: dict[str, Any]) -> list[Option]:
    return [
        Option(str(b.get("title", "")), str(b.get("payload") or ""))
        for b in frame.get("buttons") or []
        if isinstance(b, dict) and b.get("title")
    ]


def options_block(options: Sequence[Option], first: int, prompt: str = "回复数字：") -> str:
    lines = [prompt] + [f"{first + i}. {o.title}" for i, o in enumerate(options)]
    return "\n".join(lines)


def handoff_text(frame: dict[str, Any]) -> str | None:
    state = frame.get("state")
    if state == "waiting":
        # The stored notice before it says "正在为您转接人工客服，请稍候。"; this is the queue.
        ahead = max(int(frame.get("position") or 1) - 1, 0)
        queue = f"您前面还有 {ahead} 位" if ahead else "您是下一位"
        return f"排队中：{queue}。转接期间您发送的消息会直接转给工作人员。"
    if state == "offline":
        hours = frame.get("hours")
        why = (
            f"现在不是人工服务时间（{hours}）"
            if frame.get("reason") == "hours" and hours
            else "人工客服暂时都不在线"
        )
        return (
            f"抱歉，{why}。如需工作人员回电，请发送“留言 手机号 留言内容”，"
            "例如：留言 13800000000 想咨询商标续展。"
        )
    if state == "closed":
        return RATING_PROMPT
    # "active" and "returned" are announced by the stored system notices that come with them.
    return None


def frame_blocks(frame: dict[str, Any], numbering: Numbering) -> list[str]:
    """One frame as text blocks ([] for frames a WeChat user does not see, e.g. typing)."""
    kind = frame.get("type")
    raw_text = frame.get("text")
    text = raw_text if isinstance(raw_text, str) else ""
    if kind == "bot":
        blocks = [plain(text)] if text.strip() else []
        blocks += card_blocks(frame.get("custom"))
        options = buttons_of(frame)
        if options:
            blocks.append(options_block(options, numbering.take(len(options))))
        return blocks
    if kind == "staff":
        agent = frame.get("agent") or ""
        return (
            [f"【人工客服{' ' + agent if agent else ''}】\n{text.strip()}"] if text.strip() else []
        )
    if kind == "handoff":
        notice = handoff_text(frame)
        return [notice] if notice else []
    if kind == "error":
        blocks = [text.strip()] if text.strip() else []
        if any(o.payload == REQUEST_HUMAN for o in buttons_of(frame)):
            blocks.append("如需人工服务，请回复“转人工”。")
        return blocks
    if kind == "rating_saved":
        return ["感谢您的评价！"]
    if kind == "rating_request":
        return [BOT_RATING_PROMPT]
    if kind in ("system", "ticket_saved"):
        return [text.strip()] if text.strip() else []
    return []  # typing, user (other devices), ack …


def render_frames(frames: Iterable[dict[str, Any]]) -> list[str]:
    """The text blocks of an answer's frames, options numbered 1, 2, … across all of them (as
    `options_last_shown` numbers them when the user answers with a number)."""
    numbering = Numbering()
    return [block for frame in frames for block in frame_blocks(frame, numbering)]


def welcome_text() -> str:
    options = [Option(q, "") for q in HOT_QUESTIONS]
    return WELCOME_TEXT + BLOCK_SEPARATOR + options_block(options, 1, "猜你想问（回复数字）：")


def hot_question_options() -> list[Option]:
    return [Option(q, "") for q in HOT_QUESTIONS]


# ---- splitting --------------------------------------------------------------------------------


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut a text with no usable line break into pieces of at most `limit` bytes."""
    pieces, current = [], ""
    for char in text:
        if _byte_len(current + char) > limit:
            pieces.append(current)
            current = ""
        current += char
    return pieces + ([current] if current else [])


def _split_block(block: str, limit: int) -> list[str]:
    if _byte_len(block) <= limit:
        return [block]
    pieces: list[str] = []
    current = ""
    for line in block.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if _byte_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        if _byte_len(line) <= limit:
            current = line
        else:
            *full, current = _hard_split(line, limit)
            pieces.extend(full)
    return pieces + ([current] if current else [])


def split_messages(blocks: Iterable[str], limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Blocks joined into as few messages of at most `limit` bytes as possible, cut between
    blocks, else between lines, else between characters (never inside one)."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _split_block(block, limit):
            candidate = f"{current}{BLOCK_SEPARATOR}{piece}" if current else piece
            if _byte_len(candidate) <= limit:
                current = candidate
            else:
                messages.append(current)
                current = piece
    return messages + ([current] if current else [])


# ---- user input -------------------------------------------------------------------------------


def parse_choice(text: str) -> int | None:
    """The number of a bare option answer ("2", "２", "3."), else None."""
    match = CHOICE_PATTERN.match(text)
    if match is None:
        return None
    digits = match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return int(digits)


def options_last_shown(history: Sequence[Any]) -> list[Option] | None:
    """The options of the latest answer: the buttons of the bot messages after the last user
    message, in order (as numbered when shown). None when that answer had none. Before anything
    was answered, the options are the welcome's hot questions.

    `history` holds stored messages (objects with `role` and `data`), oldest first.
    """
    if all(m.role == "user" for m in history):
        return hot_question_options()
    answer: list[Any] = []
    for message in reversed(history):
        if message.role == "user":
            break
        answer.append(message)
    if any(m.role != "bot" for m in answer):
        return None  # staff or notices came since: numbers are no longer about those options
    options = [o for m in reversed(answer) for o in buttons_of(m.data or {})]
    return options or None


# ---- passive replies --------------------------------------------------------------------------


def cdata_safe(text: str) -> str:
    """wechatpy puts text in CDATA without escaping: split any "]]>" across two sections."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def text_reply_xml(message: BaseMessage, content: str) -> str:
    """A passive text reply to `message` (from the account to the user)."""
    reply = TextReply(
        source=message.target,
        target=message.source,
        content=cdata_safe(content),
        time=int(time.time()),
    )
    return reply.render()
