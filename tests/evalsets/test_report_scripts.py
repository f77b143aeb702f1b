"""Report charts in every script (issue 24, item 6): slice names in Chinese, Japanese, Korean and
Thai are drawn with real glyphs (matplotlib warns "Glyph ... missing from font(s)" for each one it
must draw as a box)."""

from __future__ import annotations

import warnings

from evalsets.fonts import chart_fonts
from evalsets.report import regression_chart, slice_chart

NAMES = ["source:新闻报道", "source:ニュース記事", "source:뉴스기사", "source:ข่าวภาษาไทย", "label:finance"]


def test_chart_fonts_cover_cjk_and_thai():
    assert chart_fonts()[:3] == ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans Thai"]
    slices = {n: {"metric": 0.5 + i / 20, "ci": [0.4, 0.7], "n": 40} for i, n in enumerate(NAMES)}
    reg = {n: {"diff": -0.1 + i / 50, "ci": [-0.2, 0.05], "n": 40} for i, n in enumerate(NAMES)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(slice_chart(slices, "accuracy")) > 1000 and len(regression_chart(reg)) > 1000
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []


def test_length_slices_count_units_in_every_script():
    import pandas as pd

    from evalsets.analysis import auto_slices

    zh = ["机器学习是人工智能的一个分支", "今天天气很好", "深度学习是机器学习的一个子领域它使用多层神经网络学习数据的表示"]
    items = pd.DataFrame({"input": zh, "target": ["a", "b", "c"], "slices": [[], [], []], "meta": [{}, {}, {}]})
    got = [next(s for s in sl if s.startswith("length:")) for sl in auto_slices(items)]
    assert got == ["length:medium", "length:short", "length:long"]  # by characters, not one "word" each
