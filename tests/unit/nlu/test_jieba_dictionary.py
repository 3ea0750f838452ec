"""The jieba user dictionary in data/dict/ keeps the domain's terms whole."""

from __future__ import annotations

import jieba
import pytest

from bot.domain.vocabulary import DISTRICT_ALIASES, DISTRICTS
from bot.settings import PROJECT_ROOT

DICT_DIR = PROJECT_ROOT / "data" / "dict"
DOMAIN_TERMS = [
    "商标受理窗口",
    "品牌指导站",
    "商标品牌指导站",
    "最多跑一地",
    "甬知E贷",
    "地理标志",
    "专利预审",
    "知识产权综合体",
    "知识产权保护中心",
    "马德里",
    "PCT",
    "质押融资",
    "海外侵权责任保险",
]
# Each term is placed in running text, where plain jieba would cut it up or glue it to neighbours.
SENTENCES = [
    "请问{}在什么地方办理",
    "我想了解一下{}的情况",
]


@pytest.fixture(scope="module")
def tokenizer() -> jieba.Tokenizer:
    # The same loading JiebaTokenizer does: every file of dictionary_path.
    tok = jieba.Tokenizer()
    for path in sorted(DICT_DIR.iterdir()):
        tok.load_userdict(str(path))
    return tok


@pytest.mark.parametrize("term", DOMAIN_TERMS + list(DISTRICTS) + list(DISTRICT_ALIASES)[:10])
@pytest.mark.parametrize("template", SENTENCES)
def test_term_is_one_token(tokenizer: jieba.Tokenizer, term: str, template: str) -> None:
    assert term in tokenizer.lcut(template.format(term))


def test_without_the_dictionary_jieba_cuts_the_terms_up() -> None:
    plain = jieba.Tokenizer()
    cut_up = [t for t in DOMAIN_TERMS if t not in plain.lcut(SENTENCES[0].format(t))]
    assert len(cut_up) >= len(DOMAIN_TERMS) // 2  # the dictionary is what keeps them whole
