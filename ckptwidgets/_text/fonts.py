"""Fonts for the plots: a fallback list with a CJK font, so Chinese text draws as glyphs.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs: a key such as ``变量/权重``
in a title would draw as empty boxes. matplotlib (3.6+) falls back glyph by glyph along a
*list* of families, so the plots build their text with ``[DejaVu Sans, <CJK font>]``:
Latin text keeps its usual look and Chinese text takes the CJK font's glyphs.

Nothing global changes at import. :func:`fonts` is an ``rc_context`` the figure functions
build their artists in (each ``Text`` keeps the concrete family list it was created with);
:func:`cjk_fonts` also finds a font installed after matplotlib built its font cache (it
adds the files to matplotlib's font manager once per process, never touching rcParams).

Example
-------
>>> family = font_family()
>>> family[0]
'DejaVu Sans'
>>> with fonts():
...     import matplotlib
...     matplotlib.rcParams["font.family"] == family
True
"""
from __future__ import annotations

import contextlib
import re

__all__ = ["CJK_FAMILIES", "cjk_fonts", "font_family", "fonts"]

#: CJK families, in order of preference (the first installed one is used). The Debian
#: package of the Binder image and CI is fonts-wqy-microhei (1.6 MB: see binder/apt.txt).
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Arial Unicode MS",
)
_MONO = {"WenQuanYi Micro Hei": "WenQuanYi Micro Hei Mono", "Noto Sans CJK SC": "Noto Sans Mono CJK SC",
         "Noto Sans CJK JP": "Noto Sans Mono CJK JP", "WenQuanYi Zen Hei": "WenQuanYi Zen Hei Mono"}
# Font files of CJK fonts, to find one installed after matplotlib's font cache was built.
_CJK_FILE = re.compile(r"(wqy|wenquanyi|notosans(mono)?cjk|sourcehansans|droidsansfallback|uming|msyh|simhei)",
                       re.IGNORECASE)

_found: list[str] | None = None


def cjk_fonts() -> list[str]:
    """The installed CJK font families matplotlib can use, most preferred first ([] if none).

    Found once per process. A font installed after matplotlib's font cache was built
    (``apt-get install fonts-wqy-microhei`` on a machine that had run matplotlib) is not
    in that cache: its files are then found among the system fonts and added to
    matplotlib's font manager.

    Examples
    --------
    >>> isinstance(cjk_fonts(), list)
    True
    """
    global _found
    if _found is None:
        from matplotlib import font_manager

        manager = font_manager.fontManager
        names = {f.name for f in manager.ttflist}
        if not names.intersection(CJK_FAMILIES):
            try:
                files = [p for p in font_manager.findSystemFonts() if _CJK_FILE.search(p.replace("-", "").replace("_", ""))]
            except Exception:  # a broken fontconfig must not break a plot  # pragma: no cover
                files = []
            for path in sorted(files):
                with contextlib.suppress(Exception):
                    manager.addfont(path)
            names = {f.name for f in manager.ttflist}
        _found = [name for name in (*CJK_FAMILIES, *_MONO.values()) if name in names]
    return [name for name in _found if name in CJK_FAMILIES]


def font_family(monospace: bool = False) -> list[str]:
    """The family list of the plots' text: DejaVu (bundled with matplotlib), then a CJK font.

    Parameters
    ----------
    monospace : bool
        ``DejaVu Sans Mono`` first (keys and variable names in the mapping diagram), then
        the CJK font's monospaced face when it has one.

    Examples
    --------
    >>> font_family(monospace=True)[0]
    'DejaVu Sans Mono'
    """
    cjk = cjk_fonts()
    if monospace:
        return ["DejaVu Sans Mono", *[_MONO[n] for n in cjk[:1] if _MONO.get(n) in _found], *cjk[:1]]
    return ["DejaVu Sans", *cjk[:1]]


def fonts():
    """An ``rc_context`` whose ``font.family`` is :func:`font_family`: build figures in it.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> with fonts():
    ...     text = Figure().text(0, 0, "检查点")
    >>> text.get_fontfamily() == font_family()
    True
    """
    import matplotlib

    return matplotlib.rc_context({"font.family": font_family()})
