"""Search and reply shape on the seed knowledge, loaded through the database (SQLite and
PostgreSQL): the right item, its figure, year and source in the first message."""

from __future__ import annotations

import pytest

from bot.knowledge.embed import DEFAULT_CACHE, Embedder
from bot.knowledge.live import LiveKnowledge, Snapshot
from bot.knowledge.reply import answer_messages, decide, suggestion_message
from bot.knowledge.search import KnowledgeIndex


@pytest.fixture()
async def snapshot(seeded_database_url: str) -> Snapshot:
    return await LiveKnowledge(seeded_database_url, 10, Embedder(DEFAULT_CACHE)).snapshot()


@pytest.mark.parametrize(
    ("question", "key", "figure"),
    [
        ("网上注册商标多少钱", "trademark-fee-online", "270元"),
        ("纸质申请商标一个类别多少钱", "trademark-fee-paper", "300元"),
        ("宁波2021年有多少件地理标志", "city-gi-count-2021", "58件"),
        ("商标保险最高能赔多少", "insurance-trademark-max-payout", "50万元"),
        ("2021年查处了多少商标侵权案件", "city-trademark-infringement-cases-2021", "442"),
    ],
)
async def test_a_specific_question_gets_its_figure_year_and_source_first(
    snapshot: Snapshot, question: str, key: str, figure: str
) -> None:
    decision = decide(snapshot.index.search(question))
    assert decision.band == "answer"
    assert decision.best is not None and decision.best.key == key
    first = answer_messages(snapshot.items[key], snapshot.items)[0]["text"]
    assert figure in first and len(first) <= 120
    assert "来源" in first or "据" in first  # the source travels with the figure


async def test_the_nlu_topic_is_a_hint_not_a_wall(snapshot: Snapshot) -> None:
    """A city-wide statistic asked under a patent topic still finds the statistics item."""
    hits = snapshot.index.search("宁波2021年PCT申请有多少件", topic="ask_patent_fast_track")
    assert hits[0].key == "city-pct-2021"


async def test_an_unknown_detail_is_answered_as_unknown_with_a_person(snapshot: Snapshot) -> None:
    decision = decide(snapshot.index.search("商标受理窗口的地址在哪里"))
    assert decision.best is not None
    item = snapshot.items[decision.best.key]
    assert item.unknown
    [first] = answer_messages(item, snapshot.items)[:1]
    assert (
        "核实" in first["text"]
        and {"title": "转人工", "payload": "/request_human"} in first["buttons"]
    )
    assert not any(ch.isdigit() for ch in first["text"])


async def test_details_source_and_related_questions_follow_the_answer(snapshot: Snapshot) -> None:
    item = snapshot.items["overview-trademark-window"]
    messages = answer_messages(item, snapshot.items)
    assert messages[0]["text"] == item.answer
    assert "来源：" in messages[1]["text"] and "信息时间：2021" in messages[1]["text"]
    related = [b["title"] for b in messages[-1]["buttons"]]
    assert related == [snapshot.items[k].question for k in item.related][:3]


async def test_a_vague_question_is_offered_choices_not_a_guess(snapshot: Snapshot) -> None:
    decision = decide(snapshot.index.search("材料"))
    assert decision.band == "suggest"
    message = suggestion_message(decision.hits)
    assert message["text"] == "您是想问："
    assert len(message["buttons"]) >= 2 and message["buttons"][-1]["title"] == "转人工"


async def test_nonsense_finds_nothing_to_answer(snapshot: Snapshot) -> None:
    assert decide(snapshot.index.search("今天天气怎么样")).band != "answer"
    assert decide(snapshot.index.search("")).band == "none"


async def test_the_two_stage_path_of_large_indexes_finds_what_the_exact_one_finds(
    snapshot: Snapshot,
) -> None:
    """Large indexes compare phrasings only for centroid and BM25 candidates; on the seed the
    first hit must stay the same as with every phrasing compared."""
    exact = snapshot.index
    two_stage = KnowledgeIndex(exact.entries, Embedder(DEFAULT_CACHE), exact_up_to=0)
    questions = [e.phrasings[-1] for e in exact.entries if e.phrasings]
    pairs = [(exact.search(q)[0], two_stage.search(q)[0]) for q in questions]
    assert sum(a.key == b.key for a, b in pairs) / len(pairs) >= 0.99
    # the candidates' similarities are exact, not their centroid's approximation
    assert all(abs(a.similarity - b.similarity) < 1e-5 for a, b in pairs if a.key == b.key)
