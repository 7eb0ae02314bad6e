"""Free-text sigs (cds.facts.sig): the forms US prescriptions use, and what stays unknown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.facts.sig import Sig, _words_to_digits, read_sig
from cds.knowledge import load_knowledge

K = load_knowledge()


def sig(text: str) -> Sig:
    return read_sig(text, K)


@pytest.mark.parametrize(("text", "amount", "unit", "per_day"), [
    ("1 tab PO TID", 1, "unit", 3),
    ("15 mg four times daily", 15, "mg", 4),
    ("10 mg by mouth three times a day", 10, "mg", 3),
    ("10mg tid", 10, "mg", 3),
    ("BACLOFEN 10 MG TID", 10, "mg", 3),
    ("5mg po bid", 5, "mg", 2),
    ("10 mg b.i.d.", 10, "mg", 2),
    ("10 mg q.i.d.", 10, "mg", 4),
    ("20 mg qid", 20, "mg", 4),
    ("20 mg qhs", 20, "mg", 1),
    ("10 mg nightly", 10, "mg", 1),
    ("take 10 mg daily", 10, "mg", 1),
    ("10 mg once daily", 10, "mg", 1),
    ("10 mg twice a day", 10, "mg", 2),
    ("10 mg every other day", 10, "mg", 0.5),
    ("10 mg 3 times a day", 10, "mg", 3),
    ("10 mg 3x daily", 10, "mg", 3),
    ("10 mg 4 times per day", 10, "mg", 4),
    ("10 mg PO Q8H", 10, "mg", 3),
    ("10 mg q 8 h", 10, "mg", 3),
    ("10 mg every 12 hrs", 10, "mg", 2),
    ("2.5 mg TID", 2.5, "mg", 3),
    ("10 milligrams three times daily", 10, "mg", 3),
    ("one tablet by mouth at bedtime", 1, "unit", 1),
    ("half tab bid", 0.5, "unit", 2),
    ("1/2 tab PO BID", 0.5, "unit", 2),
    ("1 1/2 tablets twice daily", 1.5, "unit", 2),
    ("one and a half tablets twice daily", 1.5, "unit", 2),
    ("1 packet TID", 1, "unit", 3),
    ("5 mL by mouth three times daily", 5, "ml", 3),
    ("tid 10 mg", 10, "mg", 3),
    ("10 mg three times daily for 5 days", 10, "mg", 3),
])
def test_common_scheduled_sigs(text: str, amount: float, unit: str, per_day: float) -> None:
    read = sig(text)
    assert (read.amount, read.unit, read.per_day) == (pytest.approx(amount), unit,
                                                      pytest.approx(per_day))
    assert not read.as_needed


def test_stated_mg_wins_over_tablet_count() -> None:
    read = sig("take 2 tablets (20 mg) twice daily")
    assert (read.amount, read.unit, read.per_day) == (20, "mg", 2)


def test_micrograms_are_kept_as_micrograms() -> None:
    read = sig("50 mcg intrathecal bolus x1")
    assert (read.amount, read.unit, read.per_day) == (50, "mcg", None)


@pytest.mark.parametrize(("text", "per_day", "maximum"), [
    ("5 mg every 8 hours as needed, max 15 mg/day", 3, 15),
    ("10 mg PO TID PRN spasms, max 30 mg/day", 3, 30),
    ("take 10 mg TID, max 40mg/day as needed", 3, 40),
    ("5 mg every 6-8 hours as needed up to 20 mg per day", 4, 20),
    ("10 mg by mouth up to 4 times daily as needed, do not exceed 40 mg per day", 4, 40),
])
def test_as_needed_with_a_stated_daily_maximum(text: str, per_day: float, maximum: float
                                                ) -> None:
    read = sig(text)
    assert read.as_needed
    assert read.per_day == pytest.approx(per_day)
    assert read.max_per_day_mg == pytest.approx(maximum)


@pytest.mark.parametrize(("text", "maximum"), [
    ("10 mg up to three times a day as needed", 30),
    ("10 mg PO q6h prn spasm", 40),
    ("10 mg PO daily PRN", 10),
])
def test_as_needed_maximum_from_amount_and_frequency(text: str, maximum: float) -> None:
    read = sig(text)
    assert read.as_needed and read.max_per_day_mg == pytest.approx(maximum)


@pytest.mark.parametrize("text", ["1 tab q8h prn", "5 mg PRN", "10 mg if needed",
                                  "10 mg when needed", "10 mg p.r.n."])
def test_as_needed_words(text: str) -> None:
    assert sig(text).as_needed


def test_as_needed_without_mg_or_frequency_has_no_maximum() -> None:
    assert sig("1 tab q8h prn").max_per_day_mg is None  # tablets: strength unknown here
    assert sig("5 mg PRN").max_per_day_mg is None  # how often: unknown


def test_scheduled_sig_with_a_maximum_is_not_as_needed() -> None:
    read = sig("10 mg by mouth three times daily; max 30 mg/day")
    assert not read.as_needed and read.max_per_day_mg == 30


@pytest.mark.parametrize("text", ["take as directed", "", "per pump programming",
                                  "see instructions", "use as instructed by neurology"])
def test_unreadable_sigs_stay_unknown(text: str) -> None:
    read = sig(text)
    assert (read.amount, read.unit, read.per_day, read.max_per_day_mg) == (None,) * 4


@pytest.mark.parametrize("text", ["10 mg PO once only", "5 mg x1", "10 mg by mouth"])
def test_no_frequency_is_not_guessed(text: str) -> None:
    assert sig(text).per_day is None


@pytest.mark.parametrize(("text", "per_day_total"), [
    ("10 mg per day", 10), ("30 mg/day in divided doses", 30), ("400 mcg/day continuous", 400)])
def test_a_stated_daily_total_is_read_as_one_amount_a_day(text: str, per_day_total: float) -> None:
    read = sig(text)
    assert read.per_day == 1 and read.amount == per_day_total


@pytest.mark.parametrize(("text", "per_day"), [
    ("Take 1 tablet (10 mg total) by mouth 3 (three) times daily.", 3),
    ("Take 2 tablets (20 mg total) by mouth 4 (four) times daily.", 4),
    ("Take 0.5 tablets (5 mg total) by mouth 2 (two) times daily as needed for spasms.", 2),
])
def test_epic_sig_with_spelled_out_count(text: str, per_day: float) -> None:
    assert sig(text).per_day == per_day


def test_split_dose_sig_is_not_read_as_its_first_part() -> None:
    read = sig("10 mg every morning and 20 mg at bedtime")
    assert read.per_day is None or (read.amount or 0) * read.per_day == 30


def test_leading_dot_decimal_is_not_read_as_a_whole_number() -> None:
    read = sig("take .5 tab bid")
    assert read.amount in (None, 0.5)


def test_count_times_strength_per_dose() -> None:
    read = sig("2 x 10 mg tid")
    assert read.amount is None or read.amount == 20


def test_scheduled_sig_with_an_extra_as_needed_dose_stays_scheduled() -> None:
    read = sig("10 mg tid and 5 mg prn")
    assert not read.as_needed or read.per_day is None


def _one_word_at_a_time(text: str) -> str:
    """The reading the number-word pattern must keep: each word of rules/ replaced in
    turn, longest first, where it stands alone."""
    import re

    for word, value in sorted(K.sig_words["numbers"].items(), key=lambda w: -len(w[0])):
        text = re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w/])", f"{value:g}", text)
    return text


_PIECES = [*K.sig_words["numbers"], " ", "/", ".", "-", "1", "0", "tab", "and", "a", "x"]


@pytest.mark.parametrize("text", ["1/two", "1 1/two", "one and a half", "1 1/2 tab", "half"])
def test_number_words_in_order(text: str) -> None:
    # An earlier word's digits can complete a later word: "1/two" -> "1/2" -> "0.5".
    assert _words_to_digits(text, K) == _one_word_at_a_time(text)


@given(st.lists(st.sampled_from(_PIECES), max_size=12), st.sampled_from(["", " "]))
@settings(max_examples=3000, deadline=None)
def test_number_words_read_as_one_word_at_a_time(pieces: list[str], glue: str) -> None:
    text = glue.join(pieces)
    assert _words_to_digits(text, K) == _one_word_at_a_time(text)
