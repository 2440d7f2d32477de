"""The report's embedded Chinese font: a subset of just the glyphs a report uses, cached between runs."""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Iterable
from pathlib import Path

from crmnb.paths import bundled_cjk_font

CHART_FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)
"""System fonts with Chinese glyphs, tried for charts after the bundled Noto Sans SC."""

CJK_FAMILY = "crmnb CJK"
"""The family of the embedded Chinese glyphs (see :func:`cjk_font_face`)."""

FONT_STACK = (
    f'"{CJK_FAMILY}",-apple-system,"Segoe UI",Roboto,"Noto Sans SC","PingFang SC","Microsoft YaHei",Arial,sans-serif'
)
"""The report's font stack. The embedded face comes first: its unicode-range limits it to the
characters it holds, so Latin text still uses the reader's fonts. Placed after a family the
machine has (Arial is Liberation Sans through fontconfig), Chromium drew some runs, e.g. the
first heading of a size, with that font's empty box instead of falling back to it."""


def cjk_font_face(text: str, language: str) -> str:
    """Return an @font-face rule embedding just the glyphs ``text`` needs, or '' when it has no Chinese.

    A reader whose mail client has no Chinese font still sees the characters, and
    the report stays small: a subset of Noto Sans SC is ~100 KB for a whole report.
    In a Chinese document (``language`` zh) the subset also holds the other non-ASCII
    characters the font has (“”, —, →, ×, ·…), so a Chinese sentence is drawn in one
    font; an English one keeps the reader's fonts for those. The ``unicode-range``
    names exactly the characters embedded: the face can come first in the font stack
    without taking Latin text from the reader's fonts. Bold text uses the same face,
    emboldened by the browser.
    """
    chars = set(html.unescape(text))  # markdown headings come as &#NNNN;
    if not any(ord(c) >= 0x2E80 for c in chars):
        return ""
    wanted = {c for c in chars if ord(c) >= (0x80 if language == "zh" else 0x2E80)}
    path = bundled_cjk_font()
    if path is None:
        return ""  # the readers' own fonts will do
    cached = _subset_cache(path, language, wanted)
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    rule = _font_face(path, wanted)
    if rule and cached is not None:
        try:  # written whole, then renamed: two cases at once never read half a file
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            tmp.write_text(rule, encoding="utf-8")
            tmp.replace(cached)
        except OSError:
            pass  # no cache: the next report subsets the font again
    return rule


def _subset_cache(font: Path, language: str, wanted: set[str]) -> Path | None:
    """Return where the @font-face rule for these characters is kept between runs.

    Subsetting loads the 10 MB font, about half a second of every report; a case re-run
    while an analyst works on it uses the same characters. The key is the font file (path,
    size, modification time) and the characters, so a changed font or text makes a new rule.
    The folder is ``$XDG_CACHE_HOME/crmnb`` (default ``~/.cache/crmnb``); CRMNB_CACHE_DIR moves it.
    """
    try:
        st = font.stat()
    except OSError:
        return None
    base = os.environ.get("CRMNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "crmnb"
    )
    key = hashlib.sha256(
        f"{font}|{st.st_size}|{st.st_mtime_ns}|{language}|{''.join(sorted(wanted))}".encode()
        + Path(__file__).read_bytes()
    ).hexdigest()[:32]  # and this code
    return Path(base) / "font-subsets" / f"{key}.css"


def _font_face(path: Path, wanted: set[str]) -> str:
    """Return the @font-face rule with the subset of the font at ``path`` holding ``wanted``."""
    try:
        import base64
        import io

        from fontTools import subset
        from fontTools.ttLib import TTFont

        font = TTFont(str(path))
    except (ImportError, OSError):
        return ""
    cmap = font.getBestCmap()
    codes = sorted(ord(c) for c in wanted if ord(c) in cmap)
    opts = subset.Options()
    opts.layout_features, opts.name_IDs, opts.hinting, opts.desubroutinize = [], [], False, True
    opts.notdef_outline = True  # a character the subset lacks shows as a box, never as nothing
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=codes)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f"@font-face{{font-family:'{CJK_FAMILY}';src:url(data:font/otf;base64,{data}) format('opentype');"
        f"unicode-range:{unicode_range(codes)}}}"
    )


def unicode_range(codes: Iterable[int]) -> str:
    """Return a CSS ``unicode-range`` value listing ``codes``, runs of neighbours as ranges.

    >>> unicode_range([0x4E2D, 0x4E00, 0x4E01, 0x4E02])
    'U+4E00-4E02,U+4E2D'
    """
    runs: list[list[int]] = []
    for c in sorted(set(codes)):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in runs)


def register_chart_font(candidates: Iterable[Path | None] | None = None) -> str | None:
    """Register a font with Chinese glyphs for matplotlib, bold included, and return its family name.

    The bundled Noto Sans SC has a regular face only. A bold chart title then made matplotlib
    log "findfont: Failed to find font weight bold" on every chart; the same file is also
    registered as the family's bold face, so bold Chinese is drawn in the regular weight,
    quietly. Returns None when no candidate file exists.
    """
    from matplotlib import font_manager

    paths = [bundled_cjk_font(), *CHART_FONT_CANDIDATES] if candidates is None else list(candidates)
    for path in paths:
        if path is None or not path.is_file():
            continue
        manager = font_manager.fontManager
        manager.addfont(str(path))
        name = font_manager.FontProperties(fname=str(path)).get_name()
        faces = [f for f in manager.ttflist if f.name == name]
        if not any(font_manager.weight_dict.get(f.weight, f.weight) == 700 for f in faces if f.style == "normal"):
            regular = faces[-1]
            manager.ttflist.append(
                font_manager.FontEntry(
                    fname=regular.fname, index=regular.index, name=name, style="normal", weight=700, size=regular.size
                )
            )
            stale = getattr(manager, "_findfont_cached", None)  # a lookup made before the bold face was added
            if stale is not None:
                stale.cache_clear()
        return name
    return None
