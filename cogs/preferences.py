"""``/imagine-settings``: a member's own defaults for ``/imagine`` (model, aspect ratio, count, Remix, a suffix)
and named options (``--name`` standing for a text), the same in every server of this deployment.

Every answer is private. Used in servers only: the models a member may choose are the server's, and in a
server the member's preferences are those of every server (DMs are answered with where to use it).
What may be stored is checked by :mod:`bot.api.named_options`; :mod:`bot.discord_app.preference_views`
draws the answers. How ``/imagine`` applies the preferences is the starter's business, not this cog's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.api.inputs import ASPECT_RATIOS, COUNT_MAX
from bot.api.modelref import InvalidModelRef, ModelRef
from bot.api.named_options import (
    OPTION_VALUE_MAX,
    SUFFIX_MAX,
    OptionRejected,
    check_option_name,
    check_option_value,
    check_suffix,
)
from bot.discord_app.age_restriction import is_age_restricted
from bot.discord_app.answers import answer_privately, member_locale, refusal, reply_privately, tell_failure
from bot.discord_app.members import member_role_ids
from bot.discord_app.model_choices import AUTOCOMPLETE_LIMIT, CHOICE_MAX, usable_model_choices
from bot.discord_app.preference_views import (
    CLEAR,
    DM_ANSWER,
    NOTHING_TO_RESET,
    RESET_ANSWER,
    model_refused_answer,
    not_saved_answer,
    option_limit_answer,
    option_missing_answer,
    option_removed_answer,
    option_set_answer,
    preferences_embed,
)
from bot.i18n import Text, tr
from bot.storage import PreferenceChanges, Preferences, Repository

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

_SET_OPTIONS = {
    "model": f"Your model, one you may use here (`{CLEAR}`: forget it)",
    "aspect_ratio": "Width to height",
    "count": f"How many images (1-{COUNT_MAX})",
    "remix": "V1…V4 open the Remix editor first",
    "suffix": f"Text added to the end of every prompt, flags allowed (`{CLEAR}`: forget it)",
}
"""What each of ``set``'s options says about itself in Discord."""


class _NotSaved(Exception):
    """A change ``set`` can't make, with the member-facing reason: nothing of that ``set`` is saved."""

    def __init__(self, reason: str | Text) -> None:
        super().__init__(str(reason))
        self.reason = reason


def _unsaved(reference: str) -> Text:
    return tr(
        "Your preferences couldn't be read or saved just now (reference {reference}); try again.", reference=reference
    )


@app_commands.guild_only()
class MemberPreferences(
    commands.GroupCog,
    group_name="imagine-settings",
    group_description="Your own defaults for /imagine, the same in every server",
):
    """A member's preferences and named options."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Servers only (``guild_only`` hides it in DMs; a client that sends it anyway is answered)."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        return True

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        if isinstance(error, app_commands.NoPrivateMessage):
            await answer_privately(interaction, DM_ANSWER)
            return
        await tell_failure(interaction, error, "/imagine-settings", _unsaved)

    # ------------------------------------------------------------------ helpers

    @property
    def _repository(self) -> Repository:
        return self.bot.core.repository

    async def _usable(self, interaction: discord.Interaction) -> tuple[ModelRef, ...]:
        assert interaction.guild_id is not None  # interaction_check refused DMs
        age_restricted = is_age_restricted(interaction.channel)  # the age-restricted models: only from such channels
        return await self.bot.core.policy.usable_models(
            interaction.guild_id, member_role_ids(interaction), age_restricted=age_restricted
        )

    async def _show(self, interaction: discord.Interaction, preferences: Preferences, title: Text) -> None:
        usable = await self._usable(interaction)
        embed = preferences_embed(preferences, usable, title=title, locale=member_locale(interaction))
        await reply_privately(interaction, embed=embed)

    async def _model_change(self, interaction: discord.Interaction, typed: str) -> str:
        """The model as stored (``""`` forgets it); :class:`_NotSaved` if the member may not have it."""
        if typed.strip().lower() == CLEAR:
            return ""
        try:
            model = ModelRef.parse(typed)
        except InvalidModelRef as exc:
            raise _NotSaved(refusal(exc)) from None
        usable = await self._usable(interaction)
        if model not in usable:
            raise _NotSaved(model_refused_answer(typed.strip(), usable))
        return str(model)

    async def _checked_changes(
        self,
        interaction: discord.Interaction,
        model: str | None,
        aspect_ratio: str | None,
        count: int | None,
        remix: bool | None,
        suffix: str | None,
    ) -> PreferenceChanges:
        """The changes ``set`` was given, each checked; :class:`_NotSaved` at the first that can't be."""
        # Discord offers only these; a client that sends something else is told, not trusted.
        if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
            ratios = ", ".join(ASPECT_RATIOS)
            raise _NotSaved(
                tr("❌ aspect_ratio must be one of {ratios}, not `{given}`.", ratios=ratios, given=aspect_ratio)
            )
        if count is not None and not 1 <= count <= COUNT_MAX:
            raise _NotSaved(tr("❌ count must be from 1 to {most}, not {given}.", most=COUNT_MAX, given=count))
        if suffix is not None:
            try:
                suffix = "" if suffix.strip().lower() == CLEAR else check_suffix(suffix)
            except OptionRejected as exc:
                raise _NotSaved(refusal(exc)) from None
        if model is not None:
            model = await self._model_change(interaction, model)
        return PreferenceChanges(model=model, aspect_ratio=aspect_ratio, count=count, remix=remix, suffix=suffix)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="set", description="Set your defaults for /imagine; with no option, show them")
    @app_commands.describe(**_SET_OPTIONS)
    @app_commands.choices(aspect_ratio=[app_commands.Choice(name=ratio, value=ratio) for ratio in ASPECT_RATIOS])
    async def set_preferences(
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        aspect_ratio: str | None = None,
        count: app_commands.Range[int, 1, COUNT_MAX] | None = None,
        remix: bool | None = None,
        suffix: app_commands.Range[str, 1, SUFFIX_MAX] | None = None,
    ) -> None:
        """Change the preferences given; show them all."""
        member = interaction.user.id
        if (model, aspect_ratio, count, remix, suffix) == (None,) * 5:
            await self._show(interaction, await self._repository.preferences(member), tr("Your preferences"))
            return
        try:
            changes = await self._checked_changes(interaction, model, aspect_ratio, count, remix, suffix)
        except _NotSaved as refused:
            # All or nothing: one change refused keeps the others given with it from being saved half-way.
            await reply_privately(interaction, not_saved_answer(refused.reason))
            return
        saved = await self._repository.set_preferences(member, changes)
        await self._show(interaction, saved, tr("Preferences saved"))

    @set_preferences.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The models this member may use here that hold what was typed; ``none`` once a model is set."""
        if interaction.guild_id is None:
            return []
        choices = await usable_model_choices(
            self.bot.core.policy,
            interaction.guild_id,
            member_role_ids(interaction),
            current,
            age_restricted=is_age_restricted(interaction.channel),
        )
        if current.strip().lower() in CLEAR and (await self._repository.preferences(interaction.user.id)).model:
            label = tr("{clear} (forget it)", clear=CLEAR).render(member_locale(interaction))
            forget = app_commands.Choice(name=label, value=CLEAR)
            choices = [*choices[: AUTOCOMPLETE_LIMIT - 1], forget]
        return choices

    @app_commands.command(name="option", description="Make --NAME stand for a text in prompts; no value: remove it")
    @app_commands.describe(
        name="Letters and digits, e.g. film: then --film in a prompt stands for the value",
        value=f"Text or flags, e.g. --ar 16:9 --no people (up to {OPTION_VALUE_MAX} characters); none: remove it",
    )
    async def option(
        self,
        interaction: discord.Interaction,
        name: str,
        value: app_commands.Range[str, 1, OPTION_VALUE_MAX] | None = None,
    ) -> None:
        """Set, replace or remove one named option."""
        member = interaction.user.id
        try:
            stored = check_option_name(name)
            text = None if value is None else check_option_value(value)
        except OptionRejected as exc:
            await reply_privately(interaction, refusal(exc))
            return
        changed = await self._repository.set_named_option(member, stored, text)
        if text is not None:
            await reply_privately(
                interaction, option_set_answer(stored, text) if changed else option_limit_answer(stored)
            )
        elif changed:
            await reply_privately(interaction, option_removed_answer(stored))
        else:
            held = (await self._repository.preferences(member)).options
            await reply_privately(interaction, option_missing_answer(stored, held.keys()))

    @option.autocomplete("name")
    async def option_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The member's own named options that hold what was typed (to change or remove one)."""
        typed = current.strip().lower().lstrip("-")
        held = (await self._repository.preferences(interaction.user.id)).options
        return [
            app_commands.Choice(name=f"--{name}", value=name)
            for name in held
            if typed in name and len(name) + 2 <= CHOICE_MAX
        ][:AUTOCOMPLETE_LIMIT]

    @app_commands.command(name="show", description="Show your preferences and named options")
    async def show(self, interaction: discord.Interaction) -> None:
        """All of them, with whether the preferred model may be used here."""
        await self._show(interaction, await self._repository.preferences(interaction.user.id), tr("Your preferences"))

    @app_commands.command(name="reset", description="Forget all your preferences and named options")
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget everything the member set, in every server."""
        member = interaction.user.id
        if await self._repository.preferences(member) == Preferences(member):
            await reply_privately(interaction, NOTHING_TO_RESET)
            return
        await self._repository.reset_preferences(member)
        await reply_privately(interaction, RESET_ANSWER)


async def setup(bot: ImagineBot) -> None:
    """Load the preferences cog."""
    await bot.add_cog(MemberPreferences(bot))
