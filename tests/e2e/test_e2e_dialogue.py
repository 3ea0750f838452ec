"""Conversations that hold (issue 15), end to end over the real gateway, model and actions: each
failure the issue lists, checked on what the citizen reads."""

from __future__ import annotations

import pytest

from tests.support.chat_client import ChatClient, texts
from tests.support.running_stack import RunningStack

pytestmark = pytest.mark.e2e
CONSULT = "/request_insurance_consultation"


def ratings(frames: list[dict]) -> list[dict]:
    """The rating cards the gateway made of the bot's `{"rating_request": {"after": …}}`."""
    return [{"after": f["trigger"]} for f in frames if f.get("type") == "rating_request"]


async def test_the_form_answers_questions_and_resumes(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        assert "公司" in texts(await chat.ask("预约保险咨询", payload=CONSULT))
        again = texts(await chat.ask("帮我登记一下咨询"))
        assert "请问贵公司" in again and "联系人" not in again  # not stored as the company
        answered = texts(await chat.ask("顺便问一下专利预审要多久"))
        assert "个月" in answered  # the fast-track answer
        assert "我们继续：请问贵公司（单位）的名称是？" in answered
        assert "联系人" in texts(await chat.ask("宁波甬新电子有限公司"))
        refused = texts(await chat.ask("我是这家公司负责知识产权事务的部门主管老张啊"))
        assert "太长" in refused and "联系电话" not in refused
        assert "联系电话" in texts(await chat.ask("王先生"))


async def test_a_person_typed_inside_the_form_hands_off(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        await chat.ask("预约保险咨询", payload=CONSULT)
        reply = await chat.ask("转人工")
        assert [f for f in reply if f.get("type") == "handoff"]
        assert "联系人" not in texts(reply)


async def test_a_follow_up_keeps_the_topic(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        assert "证明商标" in texts(await chat.ask("地理标志怎么申请"))
        follow_up = texts(await chat.ask("需要准备什么材料"))
        assert "使用管理规则" in follow_up and "不太确定" not in follow_up
        await chat.ask("鄞州有品牌指导站吗")
        elsewhere = await chat.ask("那余姚呢")
        assert "余姚" in texts(elsewhere)


async def test_two_questions_in_one_message_are_both_answered(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        said = texts(await chat.ask("地理标志怎么申请，要多少钱"))
        assert "证明商标" in said and "1500" in said
        assert said.index("证明商标") < said.index("1500")


async def test_random_characters_are_not_acknowledged(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        for nonsense in ("的的的的", "kkkkk", "sdfjkh"):
            said = texts(await chat.ask(nonsense))
            assert "好的。还有什么可以帮您" not in said
            assert "不太确定" in said or "换个说法" in said, nonsense


async def test_small_talk_gets_short_fitting_answers(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        assert "在的" in texts(await chat.ask("在吗"))
        assert "在的" in texts(await chat.ask("人呢"))
        assert "办公时间" in texts(await chat.ask("你们几点下班"))
        for filler in ("哦", "？", "😊"):
            said = texts(await chat.ask(filler))
            assert said and "不在我的服务范围" not in said and "不太确定" not in said, filler


async def test_the_rating_is_offered_once_after_thanks(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        await chat.ask("商标受理窗口在哪")
        thanked = await chat.ask("谢谢")
        assert "不客气" in texts(thanked)
        assert ratings(thanked) == [{"after": "thank"}]
        assert ratings(await chat.ask("再见")) == []
