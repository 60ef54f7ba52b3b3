"""Slash-command options as a test gives them (Python values by name), turned into Discord's option
objects and ``resolved`` data, typed from the synced command when there is one.

A test may name a subcommand, group or option as a member of ``locale`` sees it (``kanäle erlauben``, ``rolle``,
from the synced ``name_localizations``): like Discord, the fake sends the base (English) names in the interaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.guild import FakeChannel, FakeMember, FakeRole, FakeUser
from tests.fakes.discord.messages import Upload
from tests.fakes.discord.protocol import _OPTION_GROUP, _OPTION_SUBCOMMAND, InteractionType, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeGuild
    from tests.fakes.discord.interactions import (
        ChannelLike,
        GuildLike,
        InteractionHandle,
        UserLike,
        _Context,
        _Overrides,
    )
    from tests.fakes.discord.protocol import JSON


class OptionsMixin:
    """Part of :class:`FakeDiscord`: finding the synced command and building its options."""

    def _find_command(
        self, name: str, command_type: int, guild: FakeGuild | None, scope: str
    ) -> tuple[JSON | None, int | None]:
        def match(commands: Iterable[JSON]) -> JSON | None:
            return next((c for c in commands if c["name"] == name and int(c.get("type", 1)) == command_type), None)

        if guild is not None and scope in ("auto", "guild"):
            found = match(self.guild_commands.get(guild.id, []))
            if found is not None:
                return found, guild.id
            if scope == "guild":
                return None, guild.id
        if scope in ("auto", "global"):
            found = match(self.global_commands)
            if found is not None:
                return found, None
        return None, None

    async def _push_command(
        self,
        itype: InteractionType,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        *,
        focused: str | None,
        overrides: _Overrides,
        subcommand_group: str | None = None,
        subcommand: str | None = None,
        user: UserLike | None = None,
        guild: GuildLike | None = None,
        channel: ChannelLike | None = None,
        dm: bool = False,
        scope: str = "auto",
        locale: str = "en-US",
    ) -> InteractionHandle:
        parts = name.split()
        if len(parts) > 1:
            if subcommand_group or subcommand or len(parts) > 3:
                raise ValueError(f"bad command path {name!r}")
            name = parts[0]
            subcommand_group, subcommand = (parts[1], parts[2]) if len(parts) == 3 else (None, parts[1])
        if subcommand_group and not subcommand:
            raise ValueError("subcommand_group needs a subcommand")
        ctx = self._context(user=user, guild=guild, channel=channel, dm=dm)
        command, command_guild_id = self._find_command(name, 1, ctx.guild, scope)
        if command is None and self.require_synced_commands:
            raise ValueError(f"command {name!r} was never synced (require_synced_commands is on)")
        schema: list[JSON] | None = None
        if command is not None:
            schema = list(command.get("options") or [])
            path: list[str | None] = []
            for part in (subcommand_group, subcommand):
                if part is None:
                    path.append(None)
                    continue
                node = _named(schema, part, locale)
                if node is None:
                    raise ValueError(f"command {name!r} has no subcommand (group) {part!r}")
                path.append(str(node["name"]))  # Discord sends the base name, whatever the member typed
                schema = list(node.get("options") or [])
            subcommand_group, subcommand = path
        resolved: JSON = {}
        if schema is not None and isinstance(options, Mapping):
            options = {_base_name(schema, key, locale): value for key, value in options.items()}
            focused = _base_name(schema, focused, locale) if focused is not None else None
        built = self._build_options(
            options, schema, focused, ctx, resolved, partial=itype == InteractionType.AUTOCOMPLETE
        )
        if subcommand is not None:
            built = [{"type": _OPTION_SUBCOMMAND, "name": subcommand, "options": built}]
            if subcommand_group is not None:
                built = [{"type": _OPTION_GROUP, "name": subcommand_group, "options": built}]
        data: JSON = {
            "id": str(command["id"]) if command is not None else str(snowflake()),
            "name": name,
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        return await self._push(
            itype,
            data,
            ctx,
            message=None,
            command_name=" ".join(p for p in (name, subcommand_group, subcommand) if p),
            locale=locale,
            overrides=overrides,
        )

    def _build_options(
        self,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        schema: list[JSON] | None,
        focused: str | None,
        ctx: _Context,
        resolved: JSON,
        *,
        partial: bool,
    ) -> list[JSON]:
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            return [dict(o) for o in options]
        built: list[JSON] = []
        specs = {o["name"]: o for o in schema or []}
        for opt_name, value in options.items():
            spec = specs.get(opt_name)
            if schema is not None and spec is None:
                raise ValueError(f"synced command has no option {opt_name!r}; has {sorted(specs)}")
            opt_type = int(spec["type"]) if spec is not None else _infer_option_type(value)
            option: JSON = {"name": opt_name, "type": opt_type}
            if opt_name == focused:
                option["value"] = str(value)
                option["focused"] = True
            else:
                option["value"] = self._option_value(opt_type, value, ctx, resolved)
            built.append(option)
        if focused is not None and focused not in options:
            raise ValueError(f"focused option {focused!r} is not among the options")
        if schema is not None and not partial:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in options]
            if missing:
                raise ValueError(f"missing required options {missing}")
        return built

    def _option_value(self, opt_type: int, value: Any, ctx: _Context, resolved: JSON) -> Any:
        if opt_type == 6 or (opt_type == 9 and isinstance(value, FakeMember | FakeUser)):
            user = value.user if isinstance(value, FakeMember) else self._user_of(value)
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            member = ctx.guild.members.get(user.id) if ctx.guild is not None else None
            if member is not None and ctx.guild is not None:
                perms = ctx.guild.permissions_in(member, ctx.channel)
                resolved.setdefault("members", {})[str(user.id)] = member.payload(permissions=perms, with_user=False)
            return str(user.id)
        if opt_type == 7:
            channel = value if isinstance(value, FakeChannel) else self._find_channel(int(value))[0]
            channel_data = channel.payload()
            keys = ("id", "type", "name", "nsfw", "parent_id")
            entry: JSON = {k: channel_data[k] for k in keys if k in channel_data}
            if ctx.member is not None and ctx.guild is not None:
                entry["permissions"] = str(ctx.guild.permissions_in(ctx.member, channel))
            resolved.setdefault("channels", {})[str(channel.id)] = entry
            return str(channel.id)
        if opt_type in (8, 9):
            if ctx.guild is None:
                raise ValueError("role options need a guild")
            role = value if isinstance(value, FakeRole) else ctx.guild.roles[int(value)]
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        if opt_type == 11:
            if not isinstance(value, Upload):
                raise TypeError("attachment options take an Upload")
            attachment = self._store_attachment(ctx.channel.id, value.filename, value.data, value.content_type, None)
            self._attachments[attachment.id] = attachment
            resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload(ephemeral=True)
            return str(attachment.id)
        if isinstance(value, FakeMember | FakeUser | FakeChannel | FakeRole):
            return str(value.id)
        return value


#: Option type of a Python value when no synced command says (bool before int: a bool is an int).
_OPTION_TYPE_OF: tuple[tuple[type | tuple[type, ...], int], ...] = (
    (bool, 5),
    (int, 4),
    (float, 10),
    ((FakeMember, FakeUser), 6),
    (FakeChannel, 7),
    (FakeRole, 8),
    (Upload, 11),
)


def _infer_option_type(value: Any) -> int:
    return next((option_type for kind, option_type in _OPTION_TYPE_OF if isinstance(value, kind)), 3)


def _named(schema: list[JSON], name: str, locale: str) -> JSON | None:
    """The synced subcommand, group or option called ``name``, by its base name or its name in ``locale``."""
    found = next((o for o in schema if o.get("name") == name), None)
    if found is None:
        found = next((o for o in schema if (o.get("name_localizations") or {}).get(locale) == name), None)
    return found


def _base_name(schema: list[JSON], name: str, locale: str) -> str:
    found = _named(schema, name, locale)
    return str(found["name"]) if found is not None else name
