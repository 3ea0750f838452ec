"""Frames as WeChat text: numbered options, card blocks, the 2048-byte limit, number answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.conversation.frames import HOT_QUESTIONS, WELCOME_TEXT
from bot.wechat.render import (
    RATING_PROMPT,
    TEXT_LIMIT_BYTES,
    Option,
    options_last_shown,
    parse_choice,
    render_frames,
    split_messages,
    welcome_text,
)

STATION = {
    "name": "北仑区小港街道品牌指导站",
    "service_type": "商标品牌指导站",
    "district": "北仑区",
    "address": None,
    "opening_hours": None,
    "phone": "0574-86800000",
    "services": "商标法律宣传",
    "note": "站点正式名称待核实。",
    "source": "据公开报道（新闻）",
    "last_verified": None,
    "distance_km": 2.4,
}
INSURANCE = {
    "name": "专利执行保险",
    "insurance_type": "专利执行保险",
    "coverage": "维权费用",
    "audience": None,
    "limits": None,
    "premium": None,
    "insurer": "人保财险宁波市分公司",
    "source": "《中国市场监管报》2022年4月26日",
}


def bot(text: str = "", buttons: list[tuple[str, str]] = (), custom: Any = None) -> dict:
    frame: dict[str, Any] = {"type": "bot", "id": 1, "text": text}
    if buttons:
        frame["buttons"] = [{"title": t, "payload": p} for t, p in buttons]
    if custom is not None:
        frame["custom"] = custom
    return frame


def test_buttons_are_numbered_across_the_frames_of_one_answer() -> None:
    frames = [
        bot("请问您在哪个区县？", [("海曙区", '/inform{"district": "海曙区"}'), ("江北区", "/x")]),
        {"type": "typing", "on": False},
        bot("**也可以**转人工。", [("转人工", "/request_human")]),
    ]
    assert render_frames(frames) == [
        "请问您在哪个区县？",
        "回复数字：\n1. 海曙区\n2. 江北区",
        "也可以转人工。",
        "回复数字：\n3. 转人工",
    ]


def test_service_points_become_short_blocks_with_distance_and_unknowns_said() -> None:
    text = "\n\n".join(
        render_frames(
            [
                bot(
                    "离您最近的1个商标品牌指导站：",
                    custom={"kind": "service_points", "items": [STATION]},
                )
            ]
        )
    )
    assert text == (
        "离您最近的1个商标品牌指导站：\n\n"
        "【北仑区小港街道品牌指导站】\n"
        "距离：约2.4公里\n"
        "地址：北仑区，地址待核实\n"
        "开放时间：待核实\n"
        "电话：0574-86800000"
    )


def test_insurance_cards_name_every_field() -> None:
    [_, block] = render_frames(
        [bot("险种：", custom={"kind": "insurance_products", "items": [INSURANCE]})]
    )
    assert block.splitlines() == [
        "【专利执行保险】",
        "保障内容：维权费用",
        "适用对象：待核实",
        "保障额度：待核实",
        "保费：待核实",
        "承保机构：人保财险宁波市分公司",
        "来源：《中国市场监管报》2022年4月26日",
    ]


def test_unknown_cards_and_invisible_frames_leave_only_text() -> None:
    frames = [
        bot("文字", custom={"kind": "video", "items": [{"name": "x"}]}),
        {"type": "typing", "on": True},
        {"type": "user", "text": "我自己说的"},
        {"type": "handoff", "state": "active", "agent": "王小明"},
    ]
    assert render_frames(frames) == ["文字"]


def test_handoff_staff_system_and_error_frames_become_text() -> None:
    frames = [
        {"type": "system", "text": "正在为您转接人工客服，请稍候。"},
        {"type": "handoff", "state": "waiting", "handoff_id": 3, "position": 3},
        {"type": "staff", "text": "您好，我是王小明", "agent": "王小明"},
        {"type": "handoff", "state": "closed", "handoff_id": 3},
        {"type": "error", "code": "busy", "text": "系统繁忙，请稍后再试，或转人工咨询。",
         "buttons": [{"title": "转人工", "payload": "/request_human"}]},
    ]  # fmt: skip
    blocks = render_frames(frames)
    assert blocks[0] == "正在为您转接人工客服，请稍候。"
    assert "您前面还有 2 位" in blocks[1]
    assert blocks[2] == "【人工客服 王小明】\n您好，我是王小明"
    assert blocks[3] == RATING_PROMPT and "5. 非常满意" in blocks[3]
    assert blocks[4:] == ["系统繁忙，请稍后再试，或转人工咨询。", "如需人工服务，请回复“转人工”。"]
    offline = render_frames([{"type": "handoff", "state": "offline", "reason": "hours",
                              "hours": "工作日 9:00-17:00"}])  # fmt: skip
    assert "工作日 9:00-17:00" in offline[0] and "留言 13800000000" in offline[0]


def test_welcome_lists_the_hot_questions_as_options() -> None:
    text = welcome_text()
    assert text.startswith(WELCOME_TEXT)
    for number, question in enumerate(HOT_QUESTIONS, start=1):
        assert f"{number}. {question}" in text


def test_split_keeps_blocks_whole_when_they_fit() -> None:
    blocks = ["甲" * 400, "乙" * 400, "丙" * 100]  # 1200, 1200, 300 bytes
    messages = split_messages(blocks)
    assert messages == ["甲" * 400, "乙" * 400 + "\n\n" + "丙" * 100]


def test_split_cuts_long_blocks_at_lines_then_characters() -> None:
    lines = "\n".join(f"第{i}行" + "字" * 60 for i in range(30))  # ~5.6 KB
    messages = split_messages([lines, "é" * 3000])
    assert all(len(m.encode()) <= TEXT_LIMIT_BYTES for m in messages)
    assert "".join(messages).count("第") == 30
    assert "".join(messages).count("é") == 3000
    assert all(m.startswith("第") for m in messages if "第" in m)  # cut between lines


@given(st.lists(st.text(min_size=0, max_size=900), max_size=8))
def test_split_never_exceeds_the_limit_nor_loses_text(blocks: list[str]) -> None:
    blocks = [b for b in blocks if b]
    messages = split_messages(blocks)
    assert all(0 < len(m.encode()) <= TEXT_LIMIT_BYTES for m in messages)
    squeeze = lambda s: "".join(s.split())  # noqa: E731 - separators may move
    assert squeeze("".join(messages)) == squeeze("".join(blocks))


def test_bare_numbers_are_choices() -> None:
    assert [parse_choice(t) for t in ("2", " 3 ", "１２", "4.", "5、", "6。")] == [
        2,
        3,
        12,
        4,
        5,
        6,
    ]
    assert [parse_choice(t) for t in ("2楼", "第2个", "123", "13800000000", "", "二")] == [None] * 6


@dataclass
class Stored:
    role: str
    data: dict[str, Any] | None = None


def test_options_last_shown_are_those_of_the_latest_answer() -> None:
    districts = {
        "buttons": [{"title": "海曙区", "payload": "/a"}, {"title": "江北区", "payload": "/b"}]
    }
    human = {"buttons": [{"title": "转人工", "payload": "/request_human"}]}
    history = [Stored("user"), Stored("bot", districts), Stored("bot", human)]
    assert options_last_shown(history) == [
        Option("海曙区", "/a"),
        Option("江北区", "/b"),
        Option("转人工", "/request_human"),
    ]
    # A newer question whose answer had no buttons: numbers mean nothing any more.
    assert options_last_shown([*history, Stored("user"), Stored("bot", None)]) is None
    # Staff spoke since: a number is a message for them.
    assert options_last_shown([*history, Stored("system")]) is None
    # Nothing answered yet: the welcome's hot questions.
    assert [o.title for o in options_last_shown([])] == list(HOT_QUESTIONS)
    assert options_last_shown([Stored("user")])[0] == Option(HOT_QUESTIONS[0], "")
