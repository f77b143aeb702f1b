"""Fonts for the report's charts in every script: DejaVu Sans (matplotlib's own) first, then Noto
Sans CJK (Han, kana, Hangul) and Noto Sans Thai from the wheels that ship them, as matplotlib's
per-glyph fallback (matplotlib >= 3.6). Without them a Chinese slice name is drawn as empty boxes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_DONE: list[list[str]] = []


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def chart_fonts() -> list[str]:
    """Register the shipped fonts once and make them the fallback chain; returns the families."""
    if _DONE:
        return _DONE[0]
    import matplotlib
    from matplotlib import font_manager

    families = ["DejaVu Sans"]
    for package, pattern in (("noto_cjk_sans_jp_regular", "*.otf"), ("fontpkg_noto_sans_thai", "files/*.ttf")):
        root = _package_dir(package)
        for path in sorted(root.glob(pattern)) if root else []:
            font_manager.fontManager.addfont(str(path))
            families.append(font_manager.FontProperties(fname=str(path)).get_name())
    matplotlib.rcParams["font.family"] = families
    _DONE.append(families)
    return families
