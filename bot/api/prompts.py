"""One typed prompt to the prompts of its jobs: the member's named options and suffix, then ``{a, b}``
permutations, then ``--repeat N`` on each.

Pure logic, shared by ``/imagine`` (and the buttons that start jobs from text) and the CLI. A member's
preferences compose the prompt first (:func:`compose_prompt`): each ``--name`` of theirs stands for its
text (once: a text's own ``--name`` is left as it is), then their suffix joins the prose, before the
prompt's trailing flags (a flag the prompt gives beats the suffix's same flag). The set is then
counted before it is made, and refused whole beyond the deployment's limit
(``IMAGINE_MAX_PERMUTATIONS``), with how many jobs the prompt would make.

``--repeat N`` (``--r N``, as Midjourney reads it) may stand anywhere among the prompt's trailing flags, or
inside a permutation (``{--repeat 2, }``): each prompt the braces make is repeated by its own count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.api import permutations
from bot.api.flags import split_trailing_flags
from bot.api.named_options import BUILTIN_FLAGS
from bot.api.permutations import PermutationError
from bot.i18n import Text, tr, tr_n

__all__ = ["PermutationError", "add_suffix", "compose_prompt", "expand_named_options", "expand_prompt", "read_repeat"]

_NAMED = re.compile(r"(?<![^\s{,])(?:--|—|–)([A-Za-z][A-Za-z0-9]*)(?=[\s,}]|$)")
"""A ``--name`` standing on its own (a word, or an option in braces: ``{--a, --b}``); phones' dashes count."""

_REPEAT = re.compile(r"(?:^|\s)(?:--|—|–)(?:repeat|r)(?=\s|$)(?:\s+(\S+))?", re.IGNORECASE)
_SPACES = re.compile(r"\s{2,}")
_SPECIAL = re.compile(r"[{}\\]")


def _jobs(count: int) -> Text:
    return tr_n("{n} job", "{n} jobs", count)


def read_repeat(prompt: str, *, limit: int) -> tuple[str, int]:
    """``prompt`` without its ``--repeat N`` flag, and ``N`` (1 without one); :class:`PermutationError` for a
    malformed one, one given twice, or ``N`` past ``limit``."""
    found = list(_REPEAT.finditer(prompt))
    if not found:
        return prompt, 1
    if len(found) > 1:
        raise PermutationError(tr("--repeat is given twice; keep one."))
    match = found[0]
    value = match[1]
    if value is None or re.fullmatch(r"[0-9]{1,4}", value) is None or not 1 <= int(value) <= 1000:
        raise PermutationError(
            tr("--repeat needs a whole number of times, e.g. --repeat 2, not {typed}.", typed=value or tr("nothing"))
        )
    times = int(value)
    if times > limit:
        raise PermutationError(
            tr(
                "--repeat {times} makes {times} jobs; /imagine runs at most {jobs} at once.",
                times=times,
                jobs=_jobs(limit),
            )
        )
    rest = prompt[: match.start()] + " " + prompt[match.end() :]
    return _SPACES.sub(" ", rest).strip(), times


def expand_prompt(text: str, *, limit: int) -> list[str]:
    """Every job's prompt, in order: each combination of the braces (the first group varies slowest), each
    repeated by its ``--repeat``; or :class:`PermutationError` (a :class:`~bot.base.errors.Refusal`) saying
    how many jobs ``text`` makes when that is more than ``limit``, or where its braces cannot be read.

    A text without braces or backslashes is one prompt as typed (``--repeat`` aside).
    """
    if _SPECIAL.search(text) is None:
        prompt, times = read_repeat(text, limit=limit)
        return [prompt] * times
    combinations = permutations.count(text)
    if combinations > limit:
        raise PermutationError(
            tr(
                "Your prompt makes {combinations} combinations; /imagine runs at most {jobs} at once. "
                "Use fewer options in the braces.",
                combinations=combinations,
                jobs=_jobs(limit),
            )
        )
    prompts: list[str] = []
    for combination in permutations.expand(text):
        prompt, times = read_repeat(combination, limit=limit)
        prompts.extend([prompt] * times)
    if len(prompts) > limit:
        raise PermutationError(
            tr(
                "Your prompt makes {count} jobs ({combinations} combinations with their --repeat); "
                "/imagine runs at most {jobs} at once.",
                count=len(prompts),
                combinations=combinations,
                jobs=_jobs(limit),
            )
        )
    return prompts


def expand_named_options(text: str, named: Mapping[str, str]) -> str:
    """``text`` with each ``--name`` among ``named`` (names lower-case, matched in any case) replaced by its text.

    In one pass: a text that holds a ``--name`` of its own keeps it as typed (no option expands another,
    so none can loop). The bot's own flags (``--ar``, ``--repeat``…) are never an option. A ``--name`` not
    among them stays as it is (a trailing unknown flag is then refused when the prompt's flags are read, as
    without options).
    """
    if not named:
        return text

    def expanded(match: re.Match[str]) -> str:
        name = match[1].lower()
        # The bot's own flags keep their meaning, whatever an option stored under their name says.
        return match[0] if name in BUILTIN_FLAGS else named.get(name, match[0])

    return _NAMED.sub(expanded, text)


def add_suffix(text: str, suffix: str | None) -> str:
    """``text`` with ``suffix`` added to its prose, before its trailing flags: ``a cat --ar 1:1`` and
    ``in watercolor --no text`` make ``a cat in watercolor --ar 1:1 --no text``.

    The suffix's own flags follow the prompt's, but a flag the prompt gives (under any of its names:
    ``--aspect`` is ``--ar``) beats the suffix's.
    """
    if suffix is None or not suffix.strip():
        return text
    prose, flags = split_trailing_flags(text)
    suffix_prose, suffix_flags = split_trailing_flags(suffix.strip())
    given = {flag.kind for flag in flags}
    parts = [
        prose.strip(),
        suffix_prose,
        *(flag.text for flag in flags),
        *(flag.text for flag in suffix_flags if flag.kind not in given),
    ]
    return " ".join(part for part in parts if part)


def compose_prompt(typed: str, *, named: Mapping[str, str] | None = None, suffix: str | None = None) -> str:
    """The prompt a member's preferences make of ``typed``: named options expanded, then the suffix added
    (:func:`expand_named_options`, :func:`add_suffix`); its permutations are still to expand
    (:func:`expand_prompt`)."""
    return add_suffix(expand_named_options(typed, named or {}), suffix)
