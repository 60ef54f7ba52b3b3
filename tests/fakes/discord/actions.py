"""What a test makes users do (the "member types /imagine" API): slash commands, autocomplete, button
and select clicks, modal submits, messages posted and deleted by someone else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from tests.fakes.discord.components import modal_text_inputs, typed_value
from tests.fakes.discord.guild import FakeChannel, FakeMember
from tests.fakes.discord.interactions import _Context, _Overrides
from tests.fakes.discord.messages import _walk_components
from tests.fakes.discord.protocol import _SELECT_TYPES, InteractionType

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeUser
    from tests.fakes.discord.interactions import ChannelLike, GuildLike, InteractionHandle, MessageLike, UserLike
    from tests.fakes.discord.messages import StoredMessage
    from tests.fakes.discord.protocol import JSON


class CommandTarget(TypedDict, total=False):
    """Which command a pushed slash command or autocomplete names, and who runs it where.

    ``subcommand_group``/``subcommand`` may instead be part of the name (``"admin queue clear"``).
    ``user``, ``guild`` and ``channel`` default to the first guild's default member in its first text
    channel; ``dm=True`` (with ``user``) runs it in that user's DM. ``scope``: ``"auto"`` marks it a
    guild command if it was synced to that guild. ``locale`` defaults to ``"en-US"``.
    """

    subcommand_group: str | None
    subcommand: str | None
    user: UserLike | None
    guild: GuildLike | None
    channel: ChannelLike | None
    dm: bool
    scope: Literal["auto", "global", "guild"]
    locale: str


class ActionsMixin:
    """Part of :class:`FakeDiscord`: the interactions and messages a test pushes as a user."""

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        attachment_size_limit: int | None = None,
        ack_deadline: float | None = None,
        token_lifetime: float | None = None,
        backdate: float | dt.timedelta = 0.0,
        app_permissions: int | None = None,
        **target: Unpack[CommandTarget],
    ) -> InteractionHandle:
        """Push a slash command (INTERACTION_CREATE type 2) and return its handle.

        ``name`` may hold the whole path (``"admin queue clear"``) instead of
        ``subcommand_group``/``subcommand``. ``options`` maps option names to values (str, int,
        float, bool, :class:`FakeMember`/:class:`FakeUser`, :class:`FakeChannel`,
        :class:`FakeRole`, :class:`Upload`) or is a raw list of option objects. Option types
        come from the synced command when there is one, else from the Python value.
        ``target``: see :class:`CommandTarget`.
        ``backdate`` moves the interaction id (and so discord.py's ``expires_at`` and the token
        expiry) into the past; the acknowledgement deadline still counts from dispatch.
        """
        overrides = _Overrides(attachment_size_limit, ack_deadline, token_lifetime, backdate, app_permissions)
        return await self._push_command(
            InteractionType.APPLICATION_COMMAND, name, options, focused=None, overrides=overrides, **target
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        focused: str | None = None,
        **target: Unpack[CommandTarget],
    ) -> InteractionHandle:
        """Push an autocomplete interaction (type 4); ``focused`` names the option being typed.

        The focused value is sent as the raw string typed so far. Without ``focused`` the
        last option is focused (or pass raw option dicts with ``"focused": True``).
        ``target``: see :class:`CommandTarget`.
        """
        if focused is None and isinstance(options, Mapping) and options:
            focused = list(options)[-1]
        return await self._push_command(
            InteractionType.AUTOCOMPLETE, name, options, focused=focused, overrides=_Overrides(), **target
        )

    async def click(
        self,
        message: MessageLike,
        custom_id: str,
        *,
        user: UserLike | None = None,
        values: Sequence[str] | None = None,
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        ack_deadline: float | None = None,
        token_lifetime: float | None = None,
        backdate: float | dt.timedelta = 0.0,
    ) -> InteractionHandle:
        """Push a component interaction (type 3) for the component ``custom_id`` of a stored message.

        The component type comes from the message (2 button, 3/5/6/7/8 selects; pass
        ``values`` for selects). The default user is the one who ran the message's command.
        discord.py registers a view only after its response request returned, so wait for a
        bot-side signal (e.g. the ``app_command_completion`` event) before clicking a fresh message.

        Raises:
            LookupError: the message is deleted or has no such component.
            ValueError: the component is disabled.
        """
        stored = self.message(message)
        if stored.deleted:
            raise LookupError(f"message {stored.id} was deleted")
        component = next((c for c in _walk_components(stored.components) if c.get("custom_id") == custom_id), None)
        if component is None:
            raise LookupError(f"message {stored.id} has no component {custom_id!r}; has {stored.current.custom_ids}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        component_type = int(component.get("type", 2))
        if user is None and stored.interaction is not None:
            user = stored.interaction.member or stored.interaction.user
        ctx = self._context(user=user, guild=stored.guild_id, channel=stored.channel_id, dm=stored.guild_id is None)
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if component_type in _SELECT_TYPES:
            data["values"] = list(values or [])
        return await self._push(
            InteractionType.MESSAGE_COMPONENT,
            data,
            ctx,
            message=stored,
            command_name=None,
            locale=locale,
            overrides=_Overrides(attachment_size_limit, ack_deadline, token_lifetime, backdate),
        )

    async def submit_modal(
        self,
        source: InteractionHandle,
        values: Mapping[str, str],
        *,
        locale: str = "en-US",
        ack_deadline: float | None = None,
    ) -> InteractionHandle:
        """Submit the modal the bot opened in answer to ``source`` (type 5), as Discord's client does.

        ``values`` maps text inputs' custom ids to what the member typed; every other text input goes
        with its prefilled value. The interaction carries the message of ``source`` (a modal opened by a
        button has it), and may come from another process than the one that opened the modal.

        Raises:
            LookupError: ``source`` opened no modal, or the modal has no such input.
            ValueError: the client would not submit it (a required input empty, a text too short or too long).
        """
        modal = source.modal
        if modal is None:
            raise LookupError(f"interaction {source.id} did not open a modal")
        inputs = list(modal_text_inputs(modal))
        unknown = set(values) - {text_input.get("custom_id") for _, text_input in inputs}
        if unknown:
            known = sorted(str(text_input.get("custom_id")) for _, text_input in inputs)
            raise LookupError(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}; has {known}")
        submitted: list[JSON] = []
        for top, text_input in inputs:
            custom_id = text_input["custom_id"]
            value: JSON = {"type": 4, "custom_id": custom_id, "value": typed_value(text_input, values.get(custom_id))}
            if top.get("type") == 1:
                submitted.append({"type": 1, "components": [value]})
            else:
                submitted.append({"type": 18, "component": value})
        ctx = _Context(guild=source.guild, channel=source.channel, user=source.user, member=source.member)
        data: JSON = {"custom_id": modal.get("custom_id"), "components": submitted}
        return await self._push(
            InteractionType.MODAL_SUBMIT,
            data,
            ctx,
            message=source.message,
            command_name=source.command_name,
            locale=locale,
            overrides=_Overrides(ack_deadline=ack_deadline),
        )

    async def send_user_message(
        self, channel: ChannelLike, author: FakeMember | FakeUser, content: str
    ) -> StoredMessage:
        """Post a message as a user and dispatch MESSAGE_CREATE.

        As on Discord, the event's content is blank unless the bot has the message content
        intent, is mentioned, or the message is a DM.
        """
        fake_channel, guild = self._find_channel(channel.id if isinstance(channel, FakeChannel) else int(channel))
        user = author.user if isinstance(author, FakeMember) else author
        version = self._plain_version(content, route="user")
        message = self._store_message(
            channel=fake_channel, guild=guild, author=user, message_type=0, version=version, interaction=None
        )
        await self._dispatch_message_event("MESSAGE_CREATE", message)
        return message

    async def delete_message(self, message: MessageLike, *, by: str = "user") -> StoredMessage:
        """Delete a message as someone else would: later reads and edits answer 404/10008."""
        stored = self.message(message)
        self._mark_deleted(stored, by=by)
        await self._dispatch_message_event("MESSAGE_DELETE", stored)
        return stored
