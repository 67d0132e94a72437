"""Fonts for the audit PDF: embedded TrueType faces and a per-character fallback.

Every face is a TrueType file that reportlab subsets and embeds (``/FontFile2``), so the PDF
looks the same on every reader and none of the 14 standard fonts is used:

- DejaVu Sans (regular, bold) and DejaVu Sans Mono, from matplotlib's ``mpl-data`` (a pinned
  dependency): Latin with accents, Greek, Cyrillic and many symbols.
- WenQuanYi Micro Hei from ``paperang-p2-fonts-cjk`` (a TrueType collection, face 0; the font
  itself is Apache-2.0 / GPLv3 with the font-embedding exception): Chinese, Japanese kana and
  Korean Hangul in one static regular weight.
- Noto Sans Symbols and Noto Emoji (monochrome) from ``manimgx-fonts`` (OFL 1.1).

Why these: the Noto CJK packages on the index ship CFF outlines (``.otf``/``.otf.ttc``), which
reportlab cannot embed, and the one Noto Sans SC TrueType found is a variable font whose default
instance is Thin and which lacks Hangul. If the CJK package is missing, CJK falls back to
reportlab's built-in CID fonts (STSong-Light, HYSMyeongJo-Medium), which are NOT embedded: the
reader supplies the glyphs. A character that no face has is drawn as a visible code-point marker
such as ``[U+13000]`` in grey, never as an empty box. reportlab does no shaping or bidi, so
Arabic or Indic text is drawn letter by letter, unjoined.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from models.errors import CasewiseError

SANS, BOLD, MONO = "CW-Sans", "CW-Sans-Bold", "CW-Mono"
CJK, SYMBOLS, EMOJI = "CW-CJK", "CW-Symbols", "CW-Emoji"
CID_HAN, CID_HANGUL = "STSong-Light", "HYSMyeongJo-Medium"
MARKER_COLOUR = "#555555"
log = logging.getLogger(__name__)
EMOJI_START = 0x1F000
# Hangul syllables, jamo and compatibility jamo, which the Chinese CID font lacks.
HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))
CJK_RANGES = ((0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3190, 0x31FF), (0x3400, 0x4DBF),
              (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
              (0x20000, 0x3134F), *HANGUL)


class FontError(CasewiseError):
    """The fonts the PDF needs are not installed."""


class Face:
    """A font and the code points it can draw. A fallback face is read and registered only
    when a character first needs it: parsing the CJK font alone takes a few tenths of a
    second, which an English-only report should not pay."""

    def __init__(self, name: str, load: Callable[[], Callable[[int], bool] | None],
                 embedded: bool = True) -> None:
        self.name = name
        self.embedded = embedded
        self._load = load
        self._covers: Callable[[int], bool] | None = None
        self._lock = threading.Lock()

    def covers(self, code: int) -> bool:
        if self._covers is None:
            with self._lock:
                if self._covers is None:
                    self._covers = self._load() or _nothing
        return self._covers(code)


def _nothing(code: int) -> bool:
    return False


@dataclass(frozen=True)
class Fonts:
    """The registered faces: three base faces and the fallbacks tried in order."""

    fallbacks: tuple[Face, ...]
    base: dict[str, Face]
    emoji: Face | None = None

    def face_for(self, code: int, font: str) -> str | None:
        """The face that draws ``code``: ``font`` if it can, else the first fallback, else None.
        Pictographs beyond U+1F000 go to the emoji face first, so that all the emoji of a text
        look alike (DejaVu has a few of them, drawn in another style)."""
        if code >= EMOJI_START and self.emoji is not None and self.emoji.covers(code):
            return self.emoji.name
        if self.base[font].covers(code):
            return font
        return next((f.name for f in self.fallbacks if f.covers(code)), None)

    def runs(self, text: str, font: str = SANS) -> list[tuple[str | None, str]]:
        """``text`` cut into (face, chunk) runs; face None means no face has the character.
        Invisible format characters (joiners, variation selectors) are dropped: they have no
        glyph of their own and reportlab does not form ligatures from them."""
        runs: list[tuple[str | None, str]] = []
        for char in unicodedata.normalize("NFC", text):
            if _invisible(char):
                continue
            face = font if char == "\n" else self.face_for(ord(char), font)
            if runs and runs[-1][0] == face and face is not None:
                runs[-1] = (face, runs[-1][1] + char)
            else:
                runs.append((face, char))
        return runs

    def markup(self, text: str, font: str = SANS) -> str:
        """``text`` as reportlab paragraph markup: escaped, with fallback faces and markers."""
        parts = []
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
        for face, chunk in self.runs(text, font):
            if face is None:
                parts.append(f'<font name="{MONO}" color="{MARKER_COLOUR}">'
                             f"{html.escape(marker(chunk))}</font>")
            elif face == font:
                parts.append(html.escape(chunk, quote=False))
            else:
                parts.append(f'<font name="{face}">{html.escape(chunk, quote=False)}</font>')
        return "".join(parts).replace("\n", "<br/>")


def marker(chars: str) -> str:
    """What a character with no glyph in any face becomes: its code point, visibly."""
    return "".join(f"[U+{ord(c):04X}]" for c in chars)


def _invisible(char: str) -> bool:
    code = ord(char)
    return (unicodedata.category(char) == "Cf" or 0xFE00 <= code <= 0xFE0F
            or 0xE0100 <= code <= 0xE01EF)


def _in(ranges: tuple[tuple[int, int], ...]) -> Callable[[int], bool]:
    return lambda code: any(low <= code <= high for low, high in ranges)


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _dejavu_dir() -> Path:
    matplotlib = _package_dir("matplotlib")
    folder = matplotlib / "mpl-data" / "fonts" / "ttf" if matplotlib else None
    if folder is None or not (folder / "DejaVuSans.ttf").is_file():
        raise FontError("The DejaVu fonts that come with matplotlib are missing; reinstall "
                        "the environment with `make install`.")
    return folder


def _register_true_type(name: str, path: Path, **options: int) -> Callable[[int], bool]:
    font = TTFont(name, str(path), **options)
    pdfmetrics.registerFont(font)
    glyphs = font.face.charToGlyph
    # Controls map to .notdef (glyph 0) in some fonts: never draw them as glyphs.
    return lambda code: code >= 0x20 and glyphs.get(code, 0) != 0


def _base_face(name: str, path: Path) -> Face:
    covers = _register_true_type(name, path)
    return Face(name, lambda: covers)


def _packaged(package: str, relative: str) -> Path | None:
    folder = _package_dir(package)
    return folder / relative if folder and (folder / relative).is_file() else None


def _optional_face(name: str, path: Path | None, **options: int) -> Face:
    def load() -> Callable[[int], bool] | None:
        if path is None:
            return None
        try:
            return _register_true_type(name, path, **options)
        except (OSError, TTFError) as exc:
            # A damaged fallback font must not stop the export: its characters get markers.
            log.warning("cannot use the font %s (%s); its characters will show as code points",
                        path, exc)
            return None

    return Face(name, load)


def _cid_face(name: str, ranges: tuple[tuple[int, int], ...]) -> Face:
    def load() -> Callable[[int], bool]:
        pdfmetrics.registerFont(UnicodeCIDFont(name))
        return _in(ranges)

    # Not embedded: PDF readers supply these Adobe CJK fonts themselves.
    return Face(name, load, embedded=False)


def _cjk_faces() -> tuple[Face, ...]:
    path = _packaged("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc")
    if path is not None:
        return (_optional_face(CJK, path, subfontIndex=0),)
    return (_cid_face(CID_HANGUL, HANGUL), _cid_face(CID_HAN, CJK_RANGES))


def _register() -> Fonts:
    _fix_to_unicode_cmap()
    folder = _dejavu_dir()
    base = {SANS: _base_face(SANS, folder / "DejaVuSans.ttf"),
            BOLD: _base_face(BOLD, folder / "DejaVuSans-Bold.ttf"),
            MONO: _base_face(MONO, folder / "DejaVuSansMono.ttf")}
    pdfmetrics.registerFontFamily(SANS, normal=SANS, bold=BOLD, italic=SANS, boldItalic=BOLD)
    symbols = _optional_face(SYMBOLS, _packaged("manimgx_fonts", "NotoSansSymbols[wght].ttf"))
    emoji = _optional_face(EMOJI, _packaged("manimgx_fonts", "NotoEmoji[wght].ttf"))
    return Fonts((base[SANS], *_cjk_faces(), symbols, emoji), base, emoji)


_lock = threading.Lock()
_fonts: Fonts | None = None


def fonts() -> Fonts:
    """The registered fonts; registered once per process (safe from any thread)."""
    global _fonts
    with _lock:
        if _fonts is None:
            _fonts = _register()
        return _fonts


_ENTRY = re.compile(r"<([0-9A-F]{2})> <([0-9A-F]{5,6})>")


def _fix_to_unicode_cmap() -> None:
    """reportlab writes a code point above U+FFFF into the ToUnicode map as 5 or 6 hex digits;
    the PDF format wants UTF-16BE (a surrogate pair), and readers drop the bad entries, so an
    emoji would not copy or extract. Rewrite those entries after reportlab builds the map."""
    original = ttfonts.makeToUnicodeCMap
    if getattr(original, "casewise_fixed", False):
        return

    def to_unicode_cmap(fontname: str, subset: list[int]) -> str:
        def utf16(match: re.Match[str]) -> str:
            units = chr(int(match[2], 16)).encode("utf-16-be").hex().upper()
            return f"<{match[1]}> <{units}>"

        return _ENTRY.sub(utf16, original(fontname, subset))

    to_unicode_cmap.casewise_fixed = True  # type: ignore[attr-defined]
    ttfonts.makeToUnicodeCMap = to_unicode_cmap
