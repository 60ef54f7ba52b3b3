"""How a prompt or a blocked word is read before matching: one normalisation for both sides.

Everything that makes two spellings "the same" lives here, in :func:`normalise` (and :func:`forms`, the
two readings :mod:`bot.moderation.wordfilter` searches), applied to prompts and blocked words alike, so
the two sides can never disagree about it. Pure (no I/O, no clock); the standard library only.

Normalisation, in order
-----------------------
1. **Characters** (each code point on its own, cached):

   * format characters (Unicode category ``Cf``: zero-width space/joiners U+200B–U+200D, word joiner
     U+2060, BOM U+FEFF, soft hyphen U+00AD, bidi marks …) and the invisible Hangul fillers are
     *removed*, so ``c\\u200bat`` is ``cat``; lone surrogates become a separator;
   * NFKD, then every combining mark (``M*``) is dropped: accents and other diacritics go (``Ç`` → ``c``),
     and compatibility forms fold to their plain letter (fullwidth ``ｃ``, mathematical ``𝐜``/``𝒸``,
     ligatures ``ﬁ``, circled ``ⓒ``, superscripts …);
   * case is folded (``str.casefold``: ``ß`` → ``ss``), and the steps are repeated until stable;
   * look-alike letters that Unicode does not fold are mapped to the Latin letter they imitate:
     Cyrillic (``а е о р с у х і ѕ ј ԁ к м н т в …``), Greek (``α β ε ι κ ο ρ τ χ ζ …``), small capitals
     (``ᴄᴀᴛ``), ``ɡ ɑ ı ø ł …``, and the letter emoji 🇨 🅒 🅲. The map is applied *after* case folding
     so upper and lower case of a letter always agree — except Greek ``Η Μ Ν Υ``, whose capitals look
     like ``H M N Y`` but whose small letters ``η μ ν υ`` look like ``n u v u``; those four are mapped by
     shape in each case (the cost: a genuinely Greek word containing them is case-sensitive there).

2. **Words.** A *token* is a run of letters and digits (Unicode ``\\w`` minus ``_``) and the symbols
   ``@ $ ! '``; everything else — spaces, punctuation, ``. - _ * /``, emoji — separates tokens. Each
   character of a script written without spaces (CJK ideographs, kana, Thai, Lao, Khmer, Myanmar) is
   a token of its own, so blocked words in those scripts match anywhere in a run of text. In a token,
   ``!`` and ``'`` at either end go (``wow!``), two or more ``!`` in a row separate, a final ``'s`` goes
   (``the cat's toy`` uses ``cat``) and any other apostrophe is removed (``don't`` → ``dont``,
   ``f'u'c'k`` → ``fuck``); a single ``!`` inside a token stays for step 4 (``sh!t``).

3. **Separated letters are joined back.** A run of *two or more* consecutive one-character tokens is
   one word: ``c.a.t``, ``c a t``, ``c - a - t``, ``c*a*t`` all read ``cat``. Only single characters
   join: ``a sunny sky`` stays three words (``sunny`` is not a single letter), and ``vitamin c at
   noon`` is *not* ``cat`` (``at`` is not a single letter) — so partial splits such as ``c at`` or
   ``as s`` are deliberately not caught. Characters of no-space scripts never join.

4. **Leetspeak** ``4→a 3→e 1→i 0→o 5→s 7→t @→a $→s !→i`` is applied only inside a token that also
   contains a real letter or an ``@`` (after joining: ``c.4.t`` → ``c4t`` → ``cat``; ``a55``/``@$$`` →
   ``ass``). A token of digits stays digits: ``1500 cats`` keeps ``1500``, ``0000`` is never ``oooo``,
   ``$5`` is ``5``, and a blocked *number* (``1488``) matches only that number. ``4k`` does read ``ak``
   and ``cat5`` reads ``cats`` (they contain a letter): harmless unless such a word is itself blocked.

The result is the tokens separated by single spaces, e.g. ``normalise("Ç.4.Ť, my ｋｉｔｔｙ!")`` is
``"cat my kitty"``. :func:`normalise` is idempotent.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MARK", "forms", "normalise"]

# --------------------------------------------------------------------------------------- characters

_SHAPES_BEFORE_CASEFOLD: dict[int, str] = str.maketrans({"Η": "h", "Μ": "m", "Ν": "n", "Υ": "y"})
"""Greek capitals whose small letters look like other Latin letters; mapped by their capital shape."""

_SHAPES: dict[int, str] = str.maketrans(
    {
        # Cyrillic (small letters; capitals reach them through case folding)
        "а": "a",
        "в": "b",
        "г": "r",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "п": "n",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "і": "i",
        "ј": "j",
        "ԁ": "d",
        "ү": "y",
        "һ": "h",
        "ԛ": "q",
        "ԝ": "w",
        "ѵ": "v",
        "ӏ": "l",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "ζ": "z",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "μ": "u",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ϲ": "c",
        "ϳ": "j",
        # Latin letters that do not decompose
        "ɑ": "a",
        "ɡ": "g",
        "ı": "i",
        "ȷ": "j",
        "ɩ": "i",
        "ɛ": "e",
        "ø": "o",
        "đ": "d",
        "ł": "l",
        "ħ": "h",
        "ŧ": "t",
        "ƀ": "b",
        "æ": "ae",
        "œ": "oe",
        # small capitals ("fancy text")
        "ᴀ": "a",
        "ʙ": "b",
        "ᴄ": "c",
        "ᴅ": "d",
        "ᴇ": "e",
        "ꜰ": "f",
        "ɢ": "g",
        "ʜ": "h",
        "ɪ": "i",
        "ᴊ": "j",
        "ᴋ": "k",
        "ʟ": "l",
        "ᴍ": "m",
        "ɴ": "n",
        "ᴏ": "o",
        "ᴘ": "p",
        "ʀ": "r",
        "ꜱ": "s",
        "ᴛ": "t",
        "ᴜ": "u",
        "ᴠ": "v",
        "ᴡ": "w",
        "ʏ": "y",
        "ᴢ": "z",
        # a letter-like apostrophe, so that it is treated as one
        "ʼ": "'",
    }
)
for _first in (0x1F1E6, 0x1F150, 0x1F170):  # regional indicators 🇦, negative circled 🅐, negative squared 🅰
    _SHAPES.update({_first + _i: chr(ord("a") + _i) for _i in range(26)})

_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164")
"""Hangul fillers: letters (so not caught by category) that render as nothing."""


def _strip(text: str) -> str:
    """Drop combining marks, format characters and invisible fillers; lone surrogates become spaces."""
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category[0] == "M" or category == "Cf" or ch in _INVISIBLE_LETTERS:
            continue
        out.append(" " if category == "Cs" else ch)
    return "".join(out)


def _fold_step(text: str) -> str:
    """One round of character folding: NFKD, strip, look-alikes, casefold, again NFKD and strip."""
    text = _strip(unicodedata.normalize("NFKD", text)).translate(_SHAPES_BEFORE_CASEFOLD)
    return _strip(unicodedata.normalize("NFKD", text.casefold())).translate(_SHAPES)


def _fold_char(ch: str) -> str:
    """The folded form of one character: :func:`_fold_step` repeated until it no longer changes."""
    folded = ch
    for _ in range(8):
        again = _fold_step(folded)
        if again == folded:
            break
        folded = again
    return folded


_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\U00020000-\U0003134f"  # CJK ideographs, supplementary planes
)
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE_SCRIPTS}]")
_SYMBOL_CHARS = "@$!'"
"""Non-word characters that survive folding: the leet symbols and the apostrophe (all other become spaces)."""


def _classify(folded: str) -> str:
    r"""Turn separators into spaces and put spaces around each character of a no-space script.

    Word characters are those of regular expressions' ``\w`` except ``_`` (i.e. ``str.isalnum``).
    """
    out: list[str] = []
    for ch in folded:
        if ch in "‘’`":
            out.append("'")
        elif ch in _SYMBOL_CHARS or (ch.isalnum() and _NO_SPACE_CHAR.match(ch) is None):
            out.append(ch)
        elif ch.isalnum():
            out.append(f" {ch} ")
        else:
            out.append(" ")
    return "".join(out)


_FOLD_CACHE_LIMIT = 1 << 16


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table computing (and, up to a limit, remembering) each character's folded form."""

    def __missing__(self, key: int) -> str:
        folded = _classify(_fold_char(chr(key)))
        if len(self) < _FOLD_CACHE_LIMIT:
            self[key] = folded
        return folded


_FOLD_TABLE = _FoldTable()
_ASCII_TABLE: dict[int, str] = {code: _classify(chr(code).lower()) for code in range(128)}
"""ASCII needs only lower-casing (it has no marks, format characters or look-alikes) and separators."""


def _fold(text: str) -> str:
    """Every character folded, separators as spaces: the input of tokenisation."""
    return text.translate(_ASCII_TABLE if text.isascii() else _FOLD_TABLE)


# --------------------------------------------------------------------------------------- tokens

_SINGLE = f"[^ {_NO_SPACE_SCRIPTS}]"
_RUN_OF_SINGLES = re.compile(f"(?<![^ ]){_SINGLE}(?: {_SINGLE}(?![^ ]))+")
"""Two or more one-character tokens in a row (in a space-separated token string); never no-space scripts."""
_RUN_START = re.compile(f" {_SINGLE}(?= {_SINGLE} )")
"""The start of such a run, in the token string with a space added at both ends (a fast pre-check)."""
MARK = "\x00"
"""Between the letters of a joined run (internally only): a blocked word may start or end at one.

Folding turns every NUL of the input into a space, so the mark can only come from joining; and unlike
the other control characters NUL is not whitespace to ``str.split``."""
_MANY_BANGS = re.compile("!{2,}")
_LEETY = re.compile(r"[^\W\d_]|@")
"""A real letter, or ``@``: a token containing one is read as a (leet-spelled) word."""
_LEET_CHAR = re.compile("[013457@$!]")
"""A character that :func:`_leet` may change."""
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_SYMBOLS = str.maketrans("", "", "@$!")


def _clean_symbols(tokens: list[str]) -> list[str]:
    """Apply the symbol rules to tokens: apostrophes, lone ``!``, and symbols in letterless tokens.

    ``!`` and ``'`` at either end of a token go; a final ``'s`` goes (``cat's`` is ``cat``); any other
    apostrophe joins (``don't`` is ``dont``); two or more ``!`` in a row separate.
    """
    cleaned: list[str] = []
    for token in tokens:
        if token.isalnum():
            cleaned.append(token)
            continue
        token = token.strip("!'")
        if "'" in token:
            token = token.removesuffix("'s").replace("'", "")
        parts = _MANY_BANGS.split(token) if "!!" in token else [token]
        for part in parts:
            if len(part) > 1 and not _LEETY.search(part):
                part = part.translate(_SYMBOLS)
            if part:
                cleaned.append(part)
    return cleaned


def _leet(token: str) -> str:
    """Read digits and symbols as letters if the token is a word (see the module docstring), else drop symbols."""
    if token.isalpha() or token.isdigit():
        return token
    if _LEETY.search(token):
        return token.translate(_LEET)
    token = token.translate(_SYMBOLS)
    if MARK in token:  # a joined run that lost some of its characters
        token = MARK.join(part for part in token.split(MARK) if part)
    return token


def _join_run(run: re.Match[str]) -> str:
    """A run of single characters, joined into one token (keeping a mark where each separator was)."""
    return run.group().replace(" ", MARK)


def _leet_all(tokens: str) -> str:
    """:func:`_leet` every token of a space-separated token string (dropping tokens that become empty)."""
    out: list[str] = []
    done = 0
    for found in _LEET_CHAR.finditer(tokens):
        at = found.start()
        if at < done:  # in a token already read
            continue
        start = tokens.rfind(" ", 0, at) + 1
        end = tokens.find(" ", at)
        end = len(tokens) if end < 0 else end
        out += (tokens[done:start], _leet(tokens[start:end]))
        done = end
    out.append(tokens[done:])
    result = "".join(out)
    if "  " in result or result.startswith(" ") or result.endswith(" "):
        result = " ".join(result.split())
    return result


def forms(text: str) -> tuple[str, str]:
    """``(joined, plain)``: the normalised text with :data:`MARK` where separated letters were joined,
    and the same without joining."""
    folded = _fold(text)
    tokens = folded.split()
    if "!" in folded or "'" in folded or "$" in folded or "@" in folded:
        tokens = _clean_symbols(tokens)
    plain = " ".join(tokens)
    joined, runs = plain, 0
    if _RUN_START.search(f" {plain} ") is not None:
        joined, runs = _RUN_OF_SINGLES.subn(_join_run, plain)
    if _LEET_CHAR.search(plain) is None:
        return joined, plain
    plain = _leet_all(plain)
    return (_leet_all(joined) if runs else plain), plain


def normalise(text: str) -> str:
    """The canonical form of ``text`` used for both prompts and blocked words (see the module docstring).

    Lower-case, look-alikes folded to Latin letters, invisible characters removed, separated single
    letters joined, leetspeak read inside words; words separated by single spaces. Idempotent; never
    raises on any ``str``.
    """
    return forms(text)[0].replace(MARK, "")
