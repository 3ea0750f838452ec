"""Masking of phone and ID-card numbers in text and in log records."""

from __future__ import annotations

import logging
import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.domain.masking import MaskingFilter, install_log_masking, mask

# What must never survive masking: a standalone mobile number or 18-character ID number.
MOBILE_WHOLE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_WHOLE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的电话13812345678", "我的电话138****5678"),
        ("电话：13812345678，谢谢", "电话：138****5678，谢谢"),
        ("+86 13812345678", "+86 138****5678"),
        ("8613812345678", "86138****5678"),
        ("138-1234-5678 或 139 8765 4321", "138****5678 或 139****4321"),
        ("身份证330203199001011234", "身份证330203********1234"),
        ("身份证号 33020319900101123X 已提交", "身份证号 330203********123X 已提交"),
        ("id 33020319900101123x", "id 330203********123x"),
        ("座机 0574-87654321", "座机 0574-****4321"),
        ("请拨打(021)12345678", "请拨打(021)****5678"),
        ("010 1234 5678", "010 ****5678"),
        # Not personal numbers: left as they are.
        ("12345 政务热线", "12345 政务热线"),
        ("2022年3月", "2022年3月"),
        ("订单号 2138123456789", "订单号 2138123456789"),
        ("12813812345", "12813812345"),  # 12x is not a mobile prefix
        ("", ""),
    ],
)
def test_mask_examples(text: str, masked: str) -> None:
    assert mask(text) == masked


def mobiles() -> st.SearchStrategy[str]:
    return st.builds(
        lambda second, rest: f"1{second}{rest}",
        st.sampled_from("3456789"),
        st.text("0123456789", min_size=9, max_size=9),
    )


def id_cards() -> st.SearchStrategy[str]:
    return st.builds(
        lambda body, check: body + check,
        st.text("0123456789", min_size=17, max_size=17),
        st.sampled_from("0123456789Xx"),
    )


# Text mixing numbers of every length, personal numbers, separators, letters and Chinese.
pieces = st.one_of(
    mobiles(),
    id_cards(),
    st.text("0123456789", min_size=1, max_size=25),
    st.text("0123456789-+ ()（）Xx", min_size=1, max_size=6),
    st.text("电话身份证号码是我的请拨打，。abc", min_size=1, max_size=6),
)
texts = st.lists(pieces, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
@example("1381234567813812345678")  # two numbers run together: one 22-digit run, not a mobile
@example("13812345678 330203199001011234X")
@example("0574-1381234567813900000000")
def test_masked_text_never_contains_a_whole_mobile_or_id(text: str) -> None:
    masked = mask(text)
    assert not MOBILE_WHOLE.search(masked), masked
    assert not ID_WHOLE.search(masked), masked
    assert mask(masked) == masked  # masking twice changes nothing more


@given(
    mobiles(), st.sampled_from(["", "电话", "号码：", "call "]), st.sampled_from(["", "。", " ok"])
)
def test_every_mobile_keeps_its_first_three_and_last_four(
    mobile: str, before: str, after: str
) -> None:
    assert mask(before + mobile + after) == f"{before}{mobile[:3]}****{mobile[-4:]}{after}"


@given(id_cards())
def test_every_id_card_keeps_region_and_last_four(number: str) -> None:
    assert mask(f"证件{number}") == f"证件{number[:6]}********{number[-4:]}"


def record(msg: str, args: tuple | None = None, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("bot.test", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_masks_message_and_args() -> None:
    rec = record("user %s sent %r", ("13812345678", "身份证330203199001011234"))
    assert MaskingFilter().filter(rec) is True
    assert rec.getMessage() == "user 138****5678 sent '身份证330203********1234'"


def test_filter_masks_mapping_args_and_tracebacks() -> None:
    try:
        raise ValueError("bad phone 13900001111")
    except ValueError:
        import sys

        rec = record("from %(phone)s", ({"phone": "13812345678"},), exc_info=sys.exc_info())
    MaskingFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert "from 138****5678" in text
    assert "bad phone 139****1111" in text
    assert "13900001111" not in text and "13812345678" not in text


def test_installed_masking_covers_child_loggers_and_late_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler attached after installing, on a record from a child logger, is still masked."""
    original = logging.getLogRecordFactory()
    try:
        install_log_masking()
        install_log_masking()  # idempotent
        with caplog.at_level(logging.INFO, logger="bot.some.module"):
            logging.getLogger("bot.some.module").info("ticket from %s", "13812345678")
        assert caplog.messages == ["ticket from 138****5678"]
        assert "13812345678" not in caplog.text
    finally:
        logging.setLogRecordFactory(original)


# ---- issue 14: full-width forms, separators, 15-digit IDs, e-mail ------------------------------

# Between digits: spaces (ideographic too), dashes, dots (full-width and ideographic too).
SEPARATORS = " \u3000-－.．。·・—"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("电话１３８１２３４５６７８号", "电话138****5678号"),  # the rest keeps its full width
        ("电话138\u30001234\u30005678", "电话138****5678"),
        ("手机138。1234。5678", "手机138****5678"),
        ("手机138．1234．5678", "手机138****5678"),
        ("身份证 330203 19900101 1234", "身份证 330203********1234"),
        ("身份证 330203-1990-0101-123X", "身份证 330203********123X"),
        ("身份证３３０２０３１９９００１０１１２３Ｘ", "身份证330203********123X"),
        ("旧身份证330203900101123", "旧身份证330203*****1123"),
        ("邮箱 zhang.san@example.com 谢谢", "邮箱 z***@example.com 谢谢"),
        ("邮箱ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "邮箱z***@example.com"),
    ],
)
def test_mask_normalised_and_separated_forms(text: str, masked: str) -> None:
    assert mask(text) == masked


def with_separators(number: str, separators: list[str]) -> str:
    return "".join(c + s for c, s in zip(number, [*separators, ""], strict=False))


def to_full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def disguised(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> str:
    """A personal number as people type it: full-width or not, separators between digits."""
    number = draw(numbers)
    gaps = draw(st.lists(st.sampled_from(["", "", "", *SEPARATORS]), min_size=len(number)))
    text = with_separators(number, gaps[: len(number) - 1])
    return to_full_width(text) if draw(st.booleans()) else text


def old_id_cards() -> st.SearchStrategy[str]:
    return st.builds(
        lambda region, yy, mm, dd, seq: f"{region}{yy}{mm:02d}{dd:02d}{seq}",
        st.text("0123456789", min_size=6, max_size=6),
        st.text("0123456789", min_size=2, max_size=2),
        st.integers(1, 12),
        st.integers(1, 28),
        st.text("0123456789", min_size=3, max_size=3),
    )


emails = st.builds(
    lambda user, host: f"{user}@{host}.com",
    st.text("abcxyz019._-", min_size=1, max_size=10).filter(lambda u: u[0].isalnum()),
    st.text("abcdefgh", min_size=1, max_size=8),
)
OLD_ID_WHOLE = re.compile(r"(?<!\d)\d{15}(?!\d)")
SEPARATOR_RUN = re.compile(
    r"(?<=\d)[" + re.escape(SEPARATORS.replace("－", "").replace("．", "")) + r"]{1,3}(?=[\dXx])"
)

disguised_pieces = st.one_of(
    disguised(mobiles()),
    disguised(id_cards()),
    disguised(old_id_cards()),
    emails,
    st.text("电话身份证号码是我的请拨打，。abc ", min_size=1, max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(disguised_pieces, min_size=1, max_size=6))
def test_disguised_numbers_and_emails_never_survive(pieces: list[str]) -> None:
    text = "".join(p if i == 0 else f"，{p}" for i, p in enumerate(pieces))  # kept apart
    masked = mask(text)
    # Read it as a person would: normalised, separators between digits ignored.
    plain = SEPARATOR_RUN.sub("", unicodedata.normalize("NFKC", masked))
    assert not MOBILE_WHOLE.search(plain), (text, masked)
    assert not ID_WHOLE.search(plain), (text, masked)
    assert not OLD_ID_WHOLE.search(plain), (text, masked)
    for piece in pieces:
        if "@" in piece:
            assert piece not in masked, (text, masked)
    assert mask(masked) == masked


@given(st.text(st.characters(blacklist_categories=("Nd", "Cs")).filter(lambda c: c not in "@＠")))
def test_text_without_digits_or_at_signs_is_returned_unchanged(text: str) -> None:
    assert mask(text) == text
