"""The back office in WeChat: the bot's rating request as a numbered prompt in the same answer (one
message of the quota), a number rating it, and the status look-up by reference."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.engine import session_factory
from bot.db.leads import store_lead
from bot.db.ratings import FollowUp, Rating
from tests.unit.wechat.test_wechat_gateway import ScriptedRasa, Wechat

RATING_REQUEST = {"custom": {"rating_request": {"after": "goodbye"}}}


async def test_the_rating_prompt_follows_goodbye_and_a_number_rates(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    rasa.script["再见"] = [{"text": "再见，欢迎再来咨询！"}, RATING_REQUEST]
    shown = await wechat.say("再见")
    assert shown.startswith("再见，欢迎再来咨询！\n\n请为本次咨询服务评分，回复数字：")
    assert "2. 不满意" in shown
    assert "不满意" not in await wechat.say("你好")  # asked once per conversation only
    # Another answer came since: a number is no longer a rating.
    assert await wechat.say("2") == "答：2"
    with session_factory(wechat.database_url)() as db:
        assert db.execute(select(Rating.score)).scalar_one() is None


async def test_a_bad_rating_by_number_opens_a_follow_up(wechat: Wechat, rasa: ScriptedRasa) -> None:
    rasa.script["谢谢"] = [{"text": "不客气"}, RATING_REQUEST]
    await wechat.say("谢谢")
    assert await wechat.say("9") == "请回复 1 到 5 之间的数字为本次服务评分。"
    assert "回访" in await wechat.say("1")
    assert await wechat.say("意见：排队太久") == "已收到您的意见，谢谢！"
    assert await wechat.say("意见 再补充一句") == "答：意见 再补充一句"  # one comment only
    with session_factory(wechat.database_url)() as db:
        rating = db.execute(select(Rating)).scalar_one()
        assert (rating.score, rating.channel, rating.comment) == (1, "wechat", "排队太久")
        assert db.execute(select(FollowUp.rating_id)).scalar_one() == rating.id
    assert await wechat.say("1") == "答：1"  # rated: numbers are text again


async def test_status_look_up_in_wechat(wechat: Wechat, rasa: ScriptedRasa) -> None:
    with session_factory(wechat.database_url)() as db:
        reference = store_lead(
            db, company="甬江公司", contact_name="陈", phone="0574-87654321"
        ).reference
    assert "后四位" in await wechat.say(f"查询 {reference}")
    assert "已受理" in await wechat.say("４３２１")  # full-width digits too
    assert rasa.messages() == []
