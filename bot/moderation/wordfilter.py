"""Blocked-word matching for ``/imagine`` prompts: one normalisation, whole-word matches, evasion-resistant.

Moderators block words (or phrases); :class:`WordFilter` answers "does this prompt use one of them, and
which?". Everything that makes two spellings "the same" lives in :func:`normalise`, which is applied to
prompts and blocked words alike, so the two sides can never disagree about it. The module is pure (no
I/O, no clock) and uses the standard library only.

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

Matching
--------
A blocked word matches when its normalised tokens appear in the normalised prompt as *whole words*:
bounded by the start/end of the text or a separator on both sides, never inside a longer word
(``class``, ``passage``, ``bass`` do not contain ``ass``; ``scunthorpe``, ``cocktail``, ``therapist``,
``concatenate`` are clean). There are no implied plurals: blocking ``cat`` does not block ``cats``.

* **Repeated letters**: each run of one letter in the blocked word may be repeated in the prompt, but
  not shortened. ``cat`` is ``c{1,}a{1,}t{1,}`` and matches ``caaat`` and ``ccaatt``; ``ass`` is
  ``a{1,}s{2,}``, which matches ``asssss`` but never the English word ``as``. (Collapsing runs on both
  sides would have made ``ass`` and ``as`` the same word.)
* **Phrases**: a blocked phrase (``blood bath``) matches its words in order with one separator — or none
  (``bloodbath``) — between them.
* **Inside a joined run** (step 3) a blocked word may match any stretch of the run's letters, because
  a single-letter word next to a spelled-out one joins it: ``a w.3.a.s.e.l`` normalises to ``aweasel``
  and still matches ``weasel``; ``a c a t`` matches ``cat``. The price: a spelled-out innocent word
  (``c l a s s``) matches ``ass``. Spelled-out letters are rare in genuine prompts, so we take it.
* **Plain reading**: the prompt is also tried without joining, so joining never *hides* a whole word:
  blocking ``x`` still matches ``y x``, and blocking ``5`` matches ``x 5`` (joined, ``x5`` reads ``xs``).
* The returned value is the blocked word exactly as the moderator wrote it. If several match, the
  plain reading is searched first, then the joined one; within a search the leftmost match wins (and
  at one place, usually the word written first). Blocked words whose normalisation is empty (``"!!!"``,
  ``"🙂"``) are ignored; regex syntax in a blocked word has no special meaning (``cats?`` is ``cats``).

Performance: a word list compiles into a regex (a prefix-grouped alternation whose runs are possessive,
so it never backtracks and a search is linear in the prompt), plus a second one for spelled-out letters
compiled on first need; compiled lists are cached (64 most recent). For 500 words that is about 5 ms
cold and 4 µs cached. A check is one normalisation and one regex search (two when the prompt has
spelled-out letters): about 60 µs for a typical 1500-character prompt against 500 words, 120 µs for a
non-ASCII one, 350 µs for the worst case of 1500 characters of single letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from itertools import groupby

__all__ = ["WordFilter", "normalise"]

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
_MARK = "\x00"
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
    if _MARK in token:  # a joined run that lost some of its characters
        token = _MARK.join(part for part in token.split(_MARK) if part)
    return token


def _join_run(run: re.Match[str]) -> str:
    """A run of single characters, joined into one token (keeping a mark where each separator was)."""
    return run.group().replace(" ", _MARK)


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


def _forms(text: str) -> tuple[str, str]:
    """``(joined, plain)``: the normalised text with :data:`_MARK` where separated letters were joined,
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
    return _forms(text)[0].replace(_MARK, "")


# --------------------------------------------------------------------------------------- matching

_Unit = tuple[str, int]
"""A run in a blocked word: (character, minimum repeat count); ``("", 0)`` is the gap between phrase words."""
_GAP: _Unit = ("", 0)


def _units(key: str) -> tuple[_Unit, ...]:
    """A normalised blocked word as runs of equal characters, with gaps between its words."""
    units: list[_Unit] = []
    for word in key.split(" "):
        if units:
            units.append(_GAP)
        units.extend((char, len(list(run))) for char, run in groupby(word))
    return tuple(units)


def _unit_patterns(units: tuple[_Unit, ...], *, marks: bool) -> list[str]:
    """The regex for each unit; none of them can backtrack, so a search is linear in the prompt.

    A run ``(c, k)`` is ``c{k,}``, with a leading literal (which lets the engine skip a branch at once)
    and a possessive tail (runs are maximal, so taking the whole run is always right); with ``marks``,
    each ``c`` after the first may be preceded by a mark, so that it also matches inside a joined run of
    letters. A gap is an optional separator between different letters (``blood bath``, ``bloodbath``)
    but a required one between equal letters, where an optional one would make the split ambiguous;
    the fully concatenated phrase is a key of its own (see :func:`_compile`).
    """
    mark = re.escape(_MARK) if marks else ""
    optional_mark = f"{mark}?" if marks else ""
    patterns: list[str] = []
    for index, (char, count) in enumerate(units):
        if (char, count) == _GAP:
            separator = f"[ {mark}]" if marks else " "
            patterns.append(separator if units[index - 1][0] == units[index + 1][0] else separator + "?+")
            continue
        literal = re.escape(char)
        if marks:
            # The tail may also take a mark after the run; the next unit's mark is optional for that reason.
            run = literal + f"{optional_mark}{literal}" * (count - 1) + f"[{literal}{mark}]*+"
        else:
            run = literal * count + literal + "*+"
        patterns.append(run if index == 0 or units[index - 1] == _GAP else optional_mark + run)
    return patterns


class _Compiled:
    """A word list compiled for matching."""

    __slots__ = ("_keys", "_marked_regex", "group_words", "regex", "size")

    def __init__(self, keys: dict[tuple[_Unit, ...], str], size: int) -> None:
        """``keys``: each key's units, and the blocked word (as written) it comes from, in order."""
        # The regex groups keys by their first unit; capturing groups are numbered in that order.
        by_first: dict[_Unit, list[tuple[tuple[_Unit, ...], str]]] = {}
        for units, word in keys.items():
            by_first.setdefault(units[0], []).append((units, word))
        ordered = [key for same_first in by_first.values() for key in same_first]
        self._keys = tuple(units for units, _ in ordered)
        self.group_words = tuple(word for _, word in ordered)
        """The blocked word for each capturing group, group 1 first."""
        self.size = size
        self.regex = _regex(self._keys, marks=False) if keys else None
        """For text without marks, searched as ``" " + text``."""
        self._marked_regex: re.Pattern[str] | None = None

    @property
    def marked_regex(self) -> re.Pattern[str] | None:
        """The same words, also matching inside joined runs (for text with marks; compiled on first use)."""
        if self._marked_regex is None and self._keys:
            self._marked_regex = _regex(self._keys, marks=True)
        return self._marked_regex


@lru_cache(maxsize=64)
def _compile(words: tuple[str, ...]) -> _Compiled:
    """Compile a word list (cached: a server's list may be rebuilt into a filter for every ``/imagine``)."""
    keys: dict[tuple[_Unit, ...], str] = {}
    distinct: set[str] = set()
    for word in words:
        joined, plain = _forms(word)
        joined = joined.replace(_MARK, "")
        if not joined and not plain:
            continue
        distinct.add(joined or plain)
        for key in (joined, plain, normalise(joined.replace(" ", ""))):  # the last: the phrase run together
            if key:
                keys.setdefault(_units(key), word)
    return _Compiled(keys, len(distinct))


def _regex(keys: tuple[tuple[_Unit, ...], ...], *, marks: bool) -> re.Pattern[str]:
    """One regex for all keys; capturing group ``n`` (empty, at the end of a key) is the ``n``-th key."""
    # Group the alternatives by their first unit so a branch is entered only when its first letter matches;
    # alternatives stay in the order written, so when several match at one place the earlier word wins.
    groups: dict[_Unit, list[list[str]]] = {}
    for units in keys:
        groups.setdefault(units[0], []).append(_unit_patterns(units, marks=marks))
    branches = [
        alternatives[0][0] + "(?:" + "|".join("".join(patterns[1:]) + "()" for patterns in alternatives) + ")"
        for alternatives in groups.values()
    ]
    # Searched in " " + text: a word starts after a space (or a mark) and ends before one or at the end.
    if marks:
        mark = re.escape(_MARK)
        return re.compile(f"[ {mark}](?:" + "|".join(branches) + f")(?:(?<={mark})|(?![^ {mark}]))")
    return re.compile(" (?:" + "|".join(branches) + ")(?![^ ])")


class WordFilter:
    """A server's blocked words, ready to check prompts against.

    Cheap to build for a word list seen before (compiled lists are cached), so it can be constructed
    from the stored list on every ``/imagine``.
    """

    __slots__ = ("_compiled",)

    def __init__(self, words: Iterable[str]) -> None:
        """Compile ``words`` (duplicates and words that normalise to nothing are ignored)."""
        self._compiled = _compile(tuple(words))

    def first_match(self, prompt: str) -> str | None:
        """The blocked word, as the moderator wrote it, that ``prompt`` uses; ``None`` if it uses none."""
        compiled = self._compiled
        if compiled.regex is None:
            return None
        joined, plain = _forms(prompt)
        found = compiled.regex.search(f" {plain}")
        if found is None and joined != plain and compiled.marked_regex is not None:
            found = compiled.marked_regex.search(f" {joined}")
        if found is None or found.lastindex is None:
            return None
        return compiled.group_words[found.lastindex - 1]

    def __bool__(self) -> bool:
        """Whether any word is blocked."""
        return self._compiled.size > 0

    def __len__(self) -> int:
        """How many distinct blocked words there are (spellings with the same normalisation count once)."""
        return self._compiled.size

    def __repr__(self) -> str:
        return f"WordFilter(<{len(self)} words>)"
