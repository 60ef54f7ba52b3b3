"""One typed prompt to the prompts of its jobs: ``{a, b}`` permutations, then ``--repeat N`` on each.

Pure logic, shared by ``/imagine`` (and the buttons that start jobs from text) and the CLI. The set is
counted before it is made, and refused whole beyond the deployment's limit
(``IMAGINE_MAX_PERMUTATIONS``), with how many jobs the prompt would make.

``--repeat N`` (``--r N``, as Midjourney reads it) may stand anywhere among the prompt's trailing flags, or
inside a permutation (``{--repeat 2, }``): each prompt the braces make is repeated by its own count.
"""

from __future__ import annotations

import re

from bot.api import permutations
from bot.api.permutations import PermutationError

__all__ = ["PermutationError", "expand_prompt", "read_repeat"]

_REPEAT = re.compile(r"(?:^|\s)(?:--|—|–)(?:repeat|r)(?=\s|$)(?:\s+(\S+))?", re.IGNORECASE)
_SPACES = re.compile(r"\s{2,}")
_SPECIAL = re.compile(r"[{}\\]")


def read_repeat(prompt: str, *, limit: int) -> tuple[str, int]:
    """``prompt`` without its ``--repeat N`` flag, and ``N`` (1 without one); :class:`PermutationError` for a
    malformed one, one given twice, or ``N`` past ``limit``."""
    found = list(_REPEAT.finditer(prompt))
    if not found:
        return prompt, 1
    if len(found) > 1:
        raise PermutationError("--repeat is given twice; keep one.")
    match = found[0]
    value = match[1]
    if value is None or not value.isdigit() or not 1 <= int(value) <= 1000:
        raise PermutationError(f"--repeat needs a whole number of times, e.g. --repeat 2, not {value or 'nothing'}.")
    times = int(value)
    if times > limit:
        raise PermutationError(f"--repeat {times} makes {times} jobs; /imagine runs at most {limit} at once.")
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
            f"Your prompt makes {combinations} combinations; /imagine runs at most {limit} jobs at once. "
            "Use fewer options in the braces."
        )
    prompts: list[str] = []
    for combination in permutations.expand(text):
        prompt, times = read_repeat(combination, limit=limit)
        prompts.extend([prompt] * times)
    if len(prompts) > limit:
        raise PermutationError(
            f"Your prompt makes {len(prompts)} jobs ({combinations} combinations with their --repeat); "
            f"/imagine runs at most {limit} at once."
        )
    return prompts
