"""Each document's dominant script and language.

Script: the Unicode script most of its letters belong to (by code-point blocks; digits,
punctuation and spaces do not count). Language: lingua's detector (lingua-language-detector: the
models ship in its wheel and run offline; low-accuracy mode, which uses the trigram models only)
on the first 1,000 characters. Measured on real Debian manual paragraphs (bench/RESULTS.md):
CJK and Thai 1.00, English/German/Russian 0.79-0.85 (manual pages are full of option lists).
"""

from __future__ import annotations

import numpy as np

from dedup.shingle import is_unit

# (first code point, last code point, script), checked in order; anything else with a letter: "other"
_BLOCKS = (
    (0x0041, 0x024F, "Latin"), (0x1E00, 0x1EFF, "Latin"), (0x0370, 0x03FF, "Greek"), (0x0400, 0x052F, "Cyrillic"),
    (0x0590, 0x05FF, "Hebrew"), (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"), (0x0E00, 0x0E7F, "Thai"), (0x0E80, 0x0EFF, "Lao"), (0x1000, 0x109F, "Myanmar"),
    (0x1100, 0x11FF, "Hangul"), (0x1780, 0x17FF, "Khmer"), (0x3040, 0x309F, "Kana"), (0x30A0, 0x30FF, "Kana"),
    (0x3130, 0x318F, "Hangul"), (0x31F0, 0x31FF, "Kana"), (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"),
    (0xAC00, 0xD7AF, "Hangul"), (0xF900, 0xFAFF, "Han"), (0xFF66, 0xFF9F, "Kana"), (0x20000, 0x3134F, "Han"),
)
_STARTS = np.array([b[0] for b in _BLOCKS])
MAX_CHARS = 1_000  # what the detectors look at: the start of a document says its language
UNIT_SCRIPTS = {"Han", "Kana", "Hangul", "Thai", "Lao", "Khmer", "Myanmar"}  # dedup.shingle's units


def dominant_script(text: str) -> str:
    """The script of most of the letters in the first MAX_CHARS characters; 'none' without letters.
    Japanese text mixes Han and kana: a text with kana is 'Kana' when kana and Han together lead."""
    counts: dict[str, int] = {}
    for ch in text[: MAX_CHARS * 4]:
        if not (ch.isalpha() or is_unit(ch)):
            continue
        cp = ord(ch)
        script = "other"
        for lo, hi, name in _BLOCKS:
            if lo <= cp <= hi:
                script = name
                break
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "none"
    if counts.get("Kana", 0) and counts.get("Kana", 0) + counts.get("Han", 0) >= max(counts.values()):
        return "Kana"
    return max(counts, key=lambda k: (counts[k], k))


_DETECTOR: list = []


def detect_languages(texts: list[str]) -> list[str]:
    """ISO 639-1 code of each text's language ('und' when lingua cannot tell)."""
    if not _DETECTOR:
        from lingua import LanguageDetectorBuilder

        _DETECTOR.append(LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build())
    found = _DETECTOR[0].detect_languages_in_parallel_of([t[:MAX_CHARS] for t in texts])
    return [lang.iso_code_639_1.name.lower() if lang is not None else "und" for lang in found]


DETECTOR = "lingua-low-accuracy"
