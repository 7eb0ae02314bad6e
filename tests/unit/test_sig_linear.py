"""The linear-time sig reader (issue 25.1) reads every sig as the reader before it did.

The patterns changed only where a match may start (never inside a digit run), and a sig
longer than MAX_SIG_CHARS is no longer read at all. Within that bound, every reading must
be the old reader's (tests/support/sig_before_25.py, a frozen copy). The time it takes is
measured in bench/growth.py (1k, 10k and 100k characters), never here.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cds.facts.sig import MAX_SIG_CHARS, Sig, read_sig
from cds.knowledge import load_knowledge
from tests.support import sig_before_25

K = load_knowledge()

# The pieces sigs are made of, and the ones that made the old patterns backtrack.
_WORDS = [*K.sig_words["numbers"], *K.sig_words["per_day"], *K.sig_words["as_needed"],
          *K.sig_words["up_to"], *K.sig_words["single_dose"],
          "mg", "mcg", "ug", "ml", "tab", "tablets", "caps", "packet", "x", "times", "a",
          "per", "each", "day", "daily", "d", "every", "q", "hours", "hrs", "h", "total",
          "and", "in 24 hours", "by mouth", "po", "take", "for", "days", "(", ")", "/", "-",
          ".", ",", ";", "mg/day", "mcg/day", "x1"]
_NUMBERS = st.one_of(
    st.integers(0, 10**7).map(str),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 999), st.integers(0, 999)),
    st.builds(lambda b: f".{b}", st.integers(0, 99)),
    st.builds(lambda a, b: f"{a}/{b}", st.integers(0, 20), st.integers(0, 20)),
    st.text("0123456789", min_size=1, max_size=40),  # long runs
)
_UNITS = st.sampled_from(["mg", "mcg", "ml", "tab", "tablets", "mg/day", "mg per day"])
_FREQUENCIES = st.sampled_from([*K.sig_words["per_day"], "q8h", "every 6 hours", "3x daily",
                                "2 times a day", "3 (three) times daily"])
# A dose with its unit (and often a frequency), so that most sigs give a reading.
_DOSE = st.builds(lambda n, glue, unit, freq: f"{n}{glue}{unit} {freq}", _NUMBERS,
                  st.sampled_from(["", " "]), _UNITS, st.one_of(st.just(""), _FREQUENCIES))
_PIECE = st.one_of(_DOSE, _DOSE, st.sampled_from(_WORDS), _NUMBERS,
                   st.text("0123456789x./ ", min_size=1, max_size=12))
_GLUE = st.sampled_from([" ", "", "  ", " , ", "\t"])


def _same(text: str) -> None:
    now, before = read_sig(text, K), sig_before_25.read_sig(text, K)
    # repr: a reading of NaN (a fraction 0/0 written oddly) equals itself this way.
    assert repr(now) == repr(Sig(before.amount, before.unit, before.per_day,
                                 before.as_needed, before.max_per_day_mg)), text


@given(st.lists(st.tuples(_PIECE, _GLUE), max_size=10), st.sampled_from(["", "BACLOFEN "]))
@settings(max_examples=2500, deadline=None)
def test_every_sig_within_the_bound_reads_as_before(pieces, prefix) -> None:
    text = prefix + "".join(piece + glue for piece, glue in pieces)
    if len(text) <= MAX_SIG_CHARS:
        _same(text)


@given(st.text(max_size=200))
@settings(max_examples=2000, deadline=None)
def test_any_short_text_reads_as_before(text: str) -> None:
    _same(text)


def test_the_usual_sigs_read_as_before() -> None:
    for text in ["1 tab PO TID", "take 2 tablets (20 mg) twice daily", "2 x 10 mg tid",
                 "5 mg every 6-8 hours as needed up to 20 mg per day", "1 1/2 tablets bid",
                 "10 mg every morning and 20 mg at bedtime", "400 mcg/day continuous",
                 "12345678 mg 1x daily", "x" * 999, "1" * MAX_SIG_CHARS]:
        _same(text)


def test_a_sig_past_the_bound_is_not_read() -> None:
    read = read_sig("10 mg three times daily " + " " * MAX_SIG_CHARS, K)
    assert read == Sig(None, None, None, False, None)
