"""Age-restricted channels: which models a channel may use, and what its requests do with the safety checker.

Discord keeps adult content to age-restricted (``nsfw``) channels; a thread is what its channel is, and DMs
are not age-restricted. A moderator may mark models of the server's list as only for such channels
(``/imagine-admin models allow model:REF nsfw:True``): elsewhere they are refused with the reason, never taken
as a default or a preferred model, and not offered. In an age-restricted channel their images are attached as
spoilers, and the server decides the safety checker (``/imagine-admin safety checker:off`` turns it off there
and only there). Pure logic: no Discord, no storage.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.api.safety import Checker
from bot.base.errors import Refusal
from bot.i18n import tr
from bot.storage import GuildConfig


class AgeRestrictedRefusal(Refusal):
    """A model refused outside age-restricted channels (``text``: the reason, in the reader's language)."""


def _refs(models: Collection[str]) -> frozenset[ModelRef]:
    refs = set()
    for text in models:
        try:
            refs.add(ModelRef.parse(text))
        except InvalidModelRef:
            continue  # a stored name that no longer reads as a model is nobody's choice
    return frozenset(refs)


@dataclass(frozen=True)
class ChannelSafety:
    """What one channel of a server allows: read from the server's settings and the channel's own flag."""

    age_restricted: bool = False
    checker_off: bool = False
    """The server turned the safety checker off in its age-restricted channels."""
    nsfw_models: frozenset[ModelRef] = frozenset()

    @classmethod
    def of(cls, config: GuildConfig, *, age_restricted: bool) -> ChannelSafety:
        """The channel's safety under ``config``."""
        return cls(age_restricted, config.safety_checker_off, _refs(config.nsfw_models))

    @property
    def checker(self) -> Checker:
        """What the channel's requests do with the models' safety checker."""
        return Checker.OFF if self.age_restricted and self.checker_off else Checker.ON

    def is_nsfw(self, model: ModelRef | None) -> bool:
        """Whether ``model`` is one of the server's age-restricted models."""
        return model is not None and model in self.nsfw_models

    def spoiler(self, *models: ModelRef | None) -> bool:
        """Whether a job of these models (a job's, and the one its image came from) shows its images as spoilers."""
        return self.age_restricted and any(self.is_nsfw(model) for model in models)

    def check(self, model: ModelRef | None, command: str = "/imagine") -> None:
        """Refuse ``model`` (:class:`AgeRestrictedRefusal`) if it is age-restricted and the channel is not."""
        if not self.age_restricted and self.is_nsfw(model):
            raise AgeRestrictedRefusal(
                tr(
                    "The model `{model}` is only for age-restricted channels on this server, so {command} can't "
                    "use it here. Use it in a channel marked age-restricted, or pick another model.",
                    model=str(model),
                    command=command,
                )
            )

    def models_for_channel(
        self, config: GuildConfig, model_text: str | None, command: str, *, owner_model: ModelRef | None = None
    ) -> GuildConfig:
        """``config`` as a request in this channel sees it: outside age-restricted channels, without the
        age-restricted models (never a default or a preferred one). A request naming one is refused with the
        reason, and so is any request when the server's list has only such models; a request for the owner's
        model (the upscaler, a describing model) needs no place on the list, so the list does not concern it."""
        if self.age_restricted or not self.nsfw_models or owner_model is not None:
            return config
        if model_text:
            self.check(_ref_or_none(model_text), command)  # a name that is no model: the policy says what is wrong
        kept = tuple(name for name in config.models if not self.is_nsfw(_ref_or_none(name)))
        if config.models and not kept:
            raise AgeRestrictedRefusal(
                tr(
                    "Every model on this server is only for age-restricted channels: use {command} in a channel "
                    "marked age-restricted.",
                    command=command,
                )
            )
        default = config.default_model if config.default_model in kept else None
        return replace(config, models=kept, default_model=default)


def _ref_or_none(text: str) -> ModelRef | None:
    try:
        return ModelRef.parse(text)
    except InvalidModelRef:
        return None
