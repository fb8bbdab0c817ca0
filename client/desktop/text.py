"""Text for people of every script the expo's partners write in.

Panda3D draws a string with one font and in storage order. So: (1) right-to-left text
(Arabic, Hebrew) is shaped first, Arabic letters joined into their contextual forms
(``arabic-reshaper``) and the line reordered for display (``python-bidi``, the Unicode
bidirectional algorithm); (2) each run of characters goes to the first font of the chain
that covers its script, with Panda3D's text-property markup (``\\1name\\1 … \\2``): DejaVu
Sans for Latin, Cyrillic, Greek and Arabic, Noto Sans CJK (Simplified Chinese face) for
Chinese, Japanese and Korean. ``display(text)`` does both; widgets and labels show that.
Limit: a right-to-left paragraph that wraps over several lines is reordered line by line
before wrapping, so long wrapped Arabic text may read in the wrong line order.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import arabic_reshaper
from bidi import get_display

# Debian's fonts-noto-cjk (scripts/system-deps.sh); face 2 of the collection is "Noto Sans CJK SC".
NOTO_CJK = {True: Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
            False: Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")}
NOTO_CJK_SC_FACE = 2
CJK_PROPERTIES = "cjk"

_CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3000, 0x303F), (0x3040, 0x30FF), (0x3100, 0x31FF),
               (0x3200, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F),
               (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))
_RTL_RANGES = ((0x0590, 0x08FF), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF))


def _within(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    c = ord(ch)
    return any(lo <= c <= hi for lo, hi in ranges)


def is_cjk(ch: str) -> bool:
    return _within(ch, _CJK_RANGES)


def has_rtl(text: str) -> bool:
    return any(_within(ch, _RTL_RANGES) for ch in text)


def shape(text: str) -> str:
    """Right-to-left lines joined and in display order; other text as it is."""
    if not has_rtl(text):
        return text
    return "\n".join(get_display(arabic_reshaper.reshape(line)) if has_rtl(line) else line
                     for line in text.split("\n"))


def markup(text: str, cjk: bool = True) -> str:
    """Runs of CJK characters wrapped in the CJK font's text properties (when ``cjk``, i.e.
    the font is installed; else they stay, and show as boxes, not as nothing)."""
    if not cjk or not any(is_cjk(ch) for ch in text):
        return text
    out: list[str] = []
    inside = False
    for ch in text:
        wanted = is_cjk(ch) or (inside and ch == " ")
        if wanted != inside:
            out.append(f"\1{CJK_PROPERTIES}\1" if wanted else "\2")
            inside = wanted
        out.append(ch)
    if inside:
        out.append("\2")
    return "".join(out)


def display(text: str) -> str:
    """What to hand a TextNode for ``text``: shaped, with the font of each script."""
    return markup(shape(text), cjk_font_ready())


def plain(shown: str) -> str:
    """``display``'s output without the markup (for tests and logs)."""
    return shown.replace(f"\1{CJK_PROPERTIES}\1", "").replace("\2", "")


@lru_cache(maxsize=1)
def cjk_font_ready() -> bool:
    """Load Noto Sans CJK SC and register it as the ``cjk`` text properties; False when
    the font is not installed."""
    from panda3d.core import DynamicTextFont, Filename, TextProperties, TextPropertiesManager

    path = NOTO_CJK[True]
    if not path.is_file():
        return False
    font = DynamicTextFont(Filename.fromOsSpecific(str(path)), NOTO_CJK_SC_FACE)
    if not font.isValid():
        return False
    font.setPixelsPerUnit(64)
    props = TextProperties()
    props.setFont(font)
    TextPropertiesManager.getGlobalPtr().setProperties(CJK_PROPERTIES, props)
    return True
