"""Midjourney-style prompt flags: ``--ar W:H`` (``--aspect``), ``--seed N`` and ``--no TEXT`` at the end.

Pure logic, no Discord: :func:`parse_prompt_flags` reads the flags off the end
of a prompt, :func:`apply_prompt_flags` folds them into :class:`ImagineOptions`
(an explicit option wins over a flag) and says what it did in notes;
:func:`prompt_with_flags` writes options back as the text a member would type
(Remix fills its form with it) and :func:`remix_options` reads an edited one.

Where the flags start: the *earliest* ``--word`` token from which the rest of
the prompt reads as flags and their values, and nothing else. ``--ar`` and
``--seed`` take one value, ``--no`` every word up to the next flag, and any
other ``--word`` at most one (as Midjourney's ``--v 6``, ``--tile`` do). So a
flag-looking thing followed by more prose (``a sign saying --ar 16:9 in
neon``) stays prompt text, while ``a castle --ar banana`` is a malformed flag.

Decisions (see the README's member's guide):

* An unknown flag at the end (``--v 6``, ``--stylize 100``) is refused with the
  reason: the member clearly meant it as a setting, and silently dropping it
  would give them an image that ignores what they asked for.
* ``--ar`` with a ratio ``/imagine`` does not offer (``7:5``) uses the nearest
  offered ratio, with a note; equal ratios (``32:18``) are simply that ratio.
* A flag given twice is refused (which one was meant?), except ``--no``, whose
  texts are joined.
* ``—`` and ``–`` count as ``--``: phones turn a typed ``--`` into a dash.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from bot.api.inputs import ASPECT_RATIOS, ImagineOptions
from bot.base.errors import InputRejected
from bot.i18n import Text, tr

SEED_MAX = 2**53
"""The largest seed the slash command's integer option can carry (Discord's integer range)."""

_FLAG = re.compile(r"(?:--|—|–)([A-Za-z][A-Za-z0-9_-]*)")
_RATIO = re.compile(r"(\d{1,5}):(\d{1,5})")
_SEED = re.compile(r"\d{1,20}")
_TOKEN = re.compile(r"\S+")
_ALIASES = {"ar": "ar", "aspect": "ar", "seed": "seed", "no": "no"}
_KINDS = {**_ALIASES, "r": "repeat"}
"""Each flag name's meaning, ``--repeat`` (read by :mod:`.prompts`) included."""
_ESCAPABLE = ("{", "}", ",", "\\")
"""What a backslash makes text in a prompt whose permutations are not yet expanded (see :mod:`.permutations`)."""


class FlagRejected(InputRejected):
    """A malformed or unknown prompt flag; the message names it."""


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def flag(self) -> str | None:
        """The flag's name, lower-cased, if this token is a flag."""
        match = _FLAG.fullmatch(self.text)
        return match[1].lower() if match else None


@dataclass(frozen=True)
class _Flag:
    name: str
    """As typed, lower-cased (``aspect``, not ``ar``)."""
    values: tuple[_Token, ...]
    token: _Token
    """The flag itself as typed (``--ar``)."""

    @property
    def shown(self) -> str:
        return f"--{self.name}"

    @property
    def end(self) -> int:
        """Where the flag's last value (or the flag, without one) ends in the text."""
        return self.values[-1].end if self.values else self.token.end


@dataclass(frozen=True)
class PromptFlags:
    """A prompt with its trailing flags read off it."""

    prompt: str
    """The prompt without the flags: what the model is sent."""
    aspect_ratio: str | None = None
    """One of :data:`~bot.api.inputs.ASPECT_RATIOS` (the nearest, if another ratio was typed)."""
    aspect_typed: str | None = None
    """The flag as typed, e.g. ``--ar 7:5``, for notes."""
    aspect_exact: bool = True
    """Whether the typed ratio is an offered one (``32:18`` is ``16:9``), or only the nearest."""
    seed: int | None = None
    negative_prompt: str | None = None


def parse_prompt_flags(text: str) -> PromptFlags:
    """Read the flags at the end of ``text``; raise :class:`FlagRejected` for a malformed or unknown one."""
    found = _find_tail([_Token(m[0], m.start(), m.end()) for m in _TOKEN.finditer(text)])
    if found is None:
        return PromptFlags(prompt=text)
    return _interpret(text[: found[0].token.start].rstrip(), found)


@dataclass(frozen=True)
class TrailingFlag:
    """One flag at the end of a prompt, as typed, not yet judged (see :func:`split_trailing_flags`)."""

    name: str
    """Lower-cased, as typed (``aspect``, not ``ar``)."""
    text: str
    """The flag with its values, e.g. ``--ar 16:9``."""

    @property
    def kind(self) -> str:
        """The flag's meaning: one name per flag (``ar`` for ``--aspect``, ``repeat`` for ``--r``); an unknown
        flag is its own."""
        return _KINDS.get(self.name, self.name)


def split_trailing_flags(text: str) -> tuple[str, tuple[TrailingFlag, ...]]:
    """``text`` as its prose and the flags at its end, where :func:`parse_prompt_flags` would find them, judging
    none of them (unknown flags included: they are refused when the prompt is read).

    Works on a prompt whose permutations are not yet expanded: a ``{…}`` group is one token with its spaces
    (``--ar {1:1, 16:9}`` is a flag with one value), ``\\{`` and ``\\}`` are not braces.
    """
    found = _find_tail(_tokens_with_groups(text))
    if found is None:
        return text, ()
    prose = text[: found[0].token.start].rstrip()
    return prose, tuple(TrailingFlag(flag.name, text[flag.token.start : flag.end]) for flag in found)


def _tokens_with_groups(text: str) -> list[_Token]:
    """Runs of text between spaces, where a space inside braces does not part a run."""
    tokens: list[_Token] = []
    start: int | None = None
    depth = 0
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace() and depth == 0:
            if start is not None:
                tokens.append(_Token(text[start:position], start, position))
                start = None
            position += 1
            continue
        if start is None:
            start = position
        if char == "\\" and text[position + 1 : position + 2] in _ESCAPABLE:
            position += 2  # an escaped brace, comma or backslash is text
            continue
        depth += 1 if char == "{" else -1 if char == "}" and depth else 0
        position += 1
    if start is not None:
        tokens.append(_Token(text[start:], start, len(text)))
    return tokens


def _find_tail(tokens: list[_Token]) -> list[_Flag] | None:
    """The flags at the end: from the earliest flag token after which only flags and their values follow."""
    for index, token in enumerate(tokens):
        if token.flag is not None:
            flags = _read_tail(tokens[index:])
            if flags is not None:
                return flags
    return None


def _read_tail(tokens: list[_Token]) -> list[_Flag] | None:
    """``tokens`` as a run of flags with their values, or ``None`` if prose follows somewhere."""
    flags: list[_Flag] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        name = token.flag
        if name is None:
            return None
        position += 1
        # --no reads up to the next flag; every other flag takes at most one value.
        most = len(tokens) if name == "no" else 1
        values: list[_Token] = []
        while position < len(tokens) and len(values) < most and tokens[position].flag is None:
            values.append(tokens[position])
            position += 1
        flags.append(_Flag(name, tuple(values), token))
    return flags


def _interpret(prompt: str, flags: list[_Flag]) -> PromptFlags:
    if not prompt:
        raise FlagRejected(tr("The prompt has only flags: describe the image first, then add the flags at the end."))
    seen: dict[str, _Flag] = {}
    negatives: list[str] = []
    for flag in flags:
        kind = _ALIASES.get(flag.name)
        if kind is None:
            raise FlagRejected(
                tr(
                    "{flag} is not a prompt flag this bot reads; it reads --ar W:H (or --aspect W:H), --seed N and "
                    "--no TEXT at the end of the prompt. Remove {flag} and try again.",
                    flag=flag.shown,
                )
            )
        if not flag.values:
            example = {"ar": "16:9", "seed": "42", "no": tr("people, cars")}[kind]
            raise FlagRejected(tr("{flag} needs a value, e.g. {flag} {example}.", flag=flag.shown, example=example))
        if kind == "no":
            negatives.append(" ".join(value.text for value in flag.values))
            continue
        if kind in seen:
            raise FlagRejected(
                tr("{flag} is given twice (after {first}); keep one.", flag=flag.shown, first=seen[kind].shown)
            )
        seen[kind] = flag
    aspect = seen.get("ar")
    seed = seen.get("seed")
    ratio, exact = _ratio(aspect) if aspect else (None, True)
    return PromptFlags(
        prompt=prompt,
        aspect_ratio=ratio,
        aspect_typed=f"{aspect.shown} {aspect.values[0].text}" if aspect else None,
        aspect_exact=exact,
        seed=_seed(seed) if seed else None,
        negative_prompt=", ".join(negatives) if negatives else None,
    )


def _ratio(flag: _Flag) -> tuple[str, bool]:
    """The offered ratio equal, or else nearest (on a log scale: 2:1 is as far from 1:1 as 1:2), to the one typed.

    Also whether it is equal (``32:18`` is ``16:9``).
    """
    typed = flag.values[0].text
    match = _RATIO.fullmatch(typed)
    width, height = (int(match[1]), int(match[2])) if match else (0, 0)
    if width <= 0 or height <= 0:
        raise FlagRejected(
            tr(
                "{flag} needs width:height in whole numbers above 0, e.g. {flag} 16:9, not {typed}.",
                flag=flag.shown,
                typed=repr(typed),
            )
        )
    wanted = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(math.log(w / h) - wanted)

    divisor = math.gcd(width, height)
    reduced = f"{width // divisor}:{height // divisor}"
    if reduced in ASPECT_RATIOS:
        return reduced, True
    return min(ASPECT_RATIOS, key=distance), False  # min keeps the first of equals: the choice is stable


def _seed(flag: _Flag) -> int:
    typed = flag.values[0].text
    if _SEED.fullmatch(typed) and int(typed) <= SEED_MAX:
        return int(typed)
    raise FlagRejected(
        tr(
            "{flag} needs a whole number from 0 to {most}, not {typed}.",
            flag=flag.shown,
            most=SEED_MAX,
            typed=repr(typed),
        )
    )


def apply_prompt_flags(options: ImagineOptions) -> tuple[ImagineOptions, tuple[Text, ...]]:
    """``options`` with the prompt's flags cut off and used where no explicit option says otherwise.

    Returns the new options and notes for the member (an option that won over a
    flag, a ratio that was replaced by the nearest offered one). Raises
    :class:`FlagRejected` for a malformed or unknown flag.
    """
    flags = parse_prompt_flags(options.prompt)
    if flags.prompt == options.prompt:
        return options, ()
    notes: list[Text] = []
    aspect_ratio = options.aspect_ratio
    if flags.aspect_ratio is not None:
        if aspect_ratio is None:
            aspect_ratio = flags.aspect_ratio
            if not flags.aspect_exact:
                notes.append(
                    tr(
                        "{typed} is not a ratio /imagine offers, so the nearest, {ratio}, was used.",
                        typed=flags.aspect_typed,
                        ratio=aspect_ratio,
                    )
                )
        elif aspect_ratio != flags.aspect_ratio:
            notes.append(
                tr(
                    "The aspect_ratio option ({ratio}) was used instead of {typed}.",
                    ratio=aspect_ratio,
                    typed=flags.aspect_typed,
                )
            )
    seed = options.seed
    if flags.seed is not None:
        if seed is None:
            seed = flags.seed
        elif seed != flags.seed:
            notes.append(
                tr("The seed option ({seed}) was used instead of --seed {typed}.", seed=seed, typed=flags.seed)
            )
    negative = options.negative_prompt if options.negative_prompt is not None else flags.negative_prompt
    applied = replace(options, prompt=flags.prompt, aspect_ratio=aspect_ratio, seed=seed, negative_prompt=negative)
    return applied, tuple(notes)


def prompt_with_flags(options: ImagineOptions) -> str:
    """The prompt as a member would type it: ``options.prompt`` with ``--ar`` and ``--no`` put back as flags.

    The seed is left out (what the text is for, Remix, runs with a new one). :func:`parse_prompt_flags` reads
    the text back to the same prompt, aspect ratio and negative prompt: a prompt that went through
    :func:`apply_prompt_flags` has no flags left at its end for these to join.
    """
    parts = [options.prompt]
    if options.aspect_ratio is not None:
        parts.append(f"--ar {options.aspect_ratio}")
    if options.negative_prompt:
        parts.append(f"--no {options.negative_prompt}")
    return " ".join(parts)


def remix_options(options: ImagineOptions, text: str, seed: int) -> ImagineOptions:
    """``options`` with ``text`` (a prompt with flags, as :func:`prompt_with_flags` wrote it and a member edited it)
    as their prompt.

    The aspect ratio and the negative prompt come from the text's flags alone (a flag the member deleted is
    gone); the seed is ``seed`` (new) unless the text names one with ``--seed``; count, image, extra inputs
    and strength are kept. The flags are applied, and checked, when the job is prepared.
    """
    text = text.strip()  # a form's text often ends with the line break typed last
    try:
        typed_seed = parse_prompt_flags(text).seed
    except FlagRejected:
        typed_seed = None  # refused with the reason when the job is prepared
    return replace(
        options,
        prompt=text,
        aspect_ratio=None,
        negative_prompt=None,
        seed=seed if typed_seed is None else None,
    )
