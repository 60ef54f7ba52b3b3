"""The ways to one job's message: the interaction's token while it lives, then the channel route, else a new message.

A job journaled just before a crash may never have shown its placeholder: it is looked for, or the job is
posted anew. A message someone deleted gets the result in a new message that mentions the requester.
Which request to try again, and when, is the presenter's (:mod:`.presenter`).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

import aiohttp
import discord

from bot.discord_app.message_target import MessageTarget
from bot.discord_app.render import alt_text, render_embed
from bot.discord_app.uploads import JobUploads
from bot.i18n import Text, tr
from bot.jobs.model import ImagesNotShown, JobView
from bot.media.images import ImageFile

log = logging.getLogger(__name__)

REFUSED = tr(
    "Discord refused the message with the finished images, so they are not shown here, and nothing is charged for them."
)
UNREACHABLE = tr(
    "The job's message could no longer be reached to show the finished images, so they are not shown here, and "
    "nothing is charged for them."
)
_NOT_POSTED = tr(
    "The job's message was deleted, and Discord did not take the finished images when they were posted anew, so "
    "they are not shown here, and nothing is charged for them."
)

ComponentsFactory = Callable[[JobView, str | None], discord.ui.View | None]
"""A job message's buttons for a view, labelled in a locale (the server's)."""
TargetListener = Callable[[MessageTarget], Awaitable[None]]


class NoRoute(Exception):
    """The token is dead and there is no channel message to edit instead."""


class FilesSpent(Exception):
    """The job's message was found by a post that consumed the files: edit it now, with fresh ones."""


def placeholder_nonce(job_id: str) -> str:
    """The ``nonce`` of the job's first message, the same in every process and after a restart: Discord
    answers a second post with it, within a few minutes, with the message the first made (``enforce_nonce``,
    which discord.py sends with every nonce), so a post whose answer was lost is never made twice. At most 25
    characters, as Discord allows."""
    return hashlib.blake2b(job_id.encode(), digest_size=12).hexdigest()


async def post_message(
    client: discord.Client,
    target: MessageTarget,
    view: JobView,
    components: ComponentsFactory,
    *,
    content: Text | None = None,
    files: list[discord.File] | None = None,
    mention: int | None = None,
    first: bool = False,
) -> discord.Message:
    """A new channel message showing ``view``, replying where the target does; it pings ``mention`` alone.

    ``first``: the job's first message (its placeholder, or posted in its stead after a restart), posted with
    :func:`placeholder_nonce`: the message may be the one an earlier post of it made."""
    if target.channel_id is None:
        raise NoRoute
    channel = client.get_partial_messageable(target.channel_id)
    mentions = (
        discord.AllowedMentions.none() if mention is None else discord.AllowedMentions(users=[discord.Object(mention)])
    )
    extra = target.reply_arguments()
    if files is not None:  # none at all, not an empty list: that would clear the message's attachments
        extra["files"] = files
    if first:
        extra["nonce"] = placeholder_nonce(view.job_id)
    return await channel.send(
        content=None if content is None else content.render(target.locale),
        embed=render_embed(view, target.locale),
        view=components(view, target.locale) or discord.utils.MISSING,
        allowed_mentions=mentions,
        **extra,
    )


def discord_files(view: JobView, uploads: tuple[ImageFile, ...]) -> list[discord.File]:
    """Fresh files of ``uploads`` (a sent file is spent), each described (alt text) by the job's prompt; spoilers
    (``SPOILER_`` names) where the job's request says so (an age-restricted model's, in an age-restricted channel)."""
    description = alt_text(view) if uploads else None
    spoiler = view.request.spoiler
    return [
        discord.File(io.BytesIO(upload.data), filename=upload.filename, description=description, spoiler=spoiler)
        for upload in uploads
    ]


class MessageRoutes:
    """Reaches one job's message, and knows which routes to it are dead."""

    def __init__(
        self,
        client: discord.Client,
        target: MessageTarget,
        *,
        components: ComponentsFactory,
        token_margin: float,
        interaction: discord.Interaction | None,
        on_target: TargetListener | None,
    ) -> None:
        self._client = client
        self._interaction = interaction
        self.target = target
        self._components = components
        self._token_deadline = target.token_expires_at - timedelta(seconds=token_margin)
        self._on_target = on_target
        self.uploads = JobUploads(target.upload_limit)
        """What of the job's images fits in this message."""
        self.token_dead = False
        self.deleted = False
        self.posting = False
        """A new message is on its way (and its id to the journal): never cancelled."""

    def token_usable(self) -> bool:
        """Whether edits may still go through the interaction's token."""
        return not self.token_dead and discord.utils.utcnow() < self._token_deadline

    async def edit(self, view: JobView, files: list[discord.File], *, final: bool) -> None:
        """Edit the message to ``view`` (with ``files`` where ``final``), by the first route that lives."""
        if self.target.message_id is None:
            self.posting = True  # until the journal has the new message's id
            try:
                if await self._post_if_never_shown(view, files):
                    return
            finally:
                self.posting = False
        target = self.target
        locale = target.locale
        kwargs: dict[str, Any] = {"embed": render_embed(view, locale), "view": self._components(view, locale)}
        if final:
            kwargs["attachments"] = files
        if self.token_usable():
            if self._interaction is not None:
                await self._interaction.edit_original_response(**kwargs)
            else:
                await self._webhook().edit_message(cast(int, target.message_id), **kwargs)
            return
        if target.channel_id is None or target.message_id is None:
            raise NoRoute
        channel = self._client.get_partial_messageable(target.channel_id)
        await channel.get_partial_message(target.message_id).edit(**kwargs)

    def _webhook(self) -> discord.Webhook:
        return discord.Webhook.partial(self.target.application_id, self.target.token, client=self._client)

    async def _post_if_never_shown(self, view: JobView, files: list[discord.File]) -> bool:
        """A job journaled just before a crash may never have shown its placeholder: find it, or post the job.

        ``True`` if ``view`` was posted as a new message (nothing left to edit).
        """
        if self.token_usable():
            try:
                # "@original" in place of an id: the route Discord serves for the interaction's own answer.
                original = await self._webhook().fetch_message(cast(int, "@original"))
            except discord.NotFound:
                pass  # the placeholder never went out
            except discord.HTTPException as exc:
                if exc.status >= 500 or exc.status == 429:
                    raise
                self.token_dead = True
            else:
                await self._retarget(original.id)
                return False
        requester = self.target.requester_id
        content = tr(
            "{member} here is your /imagine (the bot restarted before it could answer you).", member=f"<@{requester}>"
        )
        message = await post_message(
            self._client,
            self.target,
            view,
            self._components,
            content=content,
            files=files,
            mention=requester,
            first=True,
        )
        # The bot's own message: edited through the channel route from now on, not the interaction's webhook.
        self.token_dead = True
        await self._retarget(message.id)
        # Discord answers with the placeholder posted before the restart (the same nonce) when its journal
        # write was what the restart cut: that message is edited to ``view``, not posted a second time.
        if message.content == content.render(self.target.locale):
            return True
        if files:
            raise FilesSpent  # the post consumed them: the edit goes with fresh ones
        return False

    async def _retarget(self, message_id: int) -> None:
        self.target = replace(self.target, message_id=message_id)
        if self._on_target is not None:
            try:
                await self._on_target(self.target)
            except Exception:
                log.exception("could not record where job's message is")

    async def repost(self, view: JobView, images: tuple[ImageFile, ...]) -> None:
        """The message is gone: post the result anew, mentioning the requester.

        Tried once (a post that failed may have gone out all the same): with images, any failure raises
        :class:`ImagesNotShown`, and the view without them is shown (posted) again.
        """
        target = self.target
        if target.channel_id is None:
            log.warning("job %s: message deleted and no channel to post in; result not shown", view.job_id)
            if images:
                raise ImagesNotShown(UNREACHABLE)
            return
        uploads = await self.uploads.fit(view.job_id, images)
        try:
            message = await post_message(
                self._client,
                target,
                view,
                self._components,
                content=tr(
                    "{member} the message for your /imagine was deleted, so here is the result.",
                    member=f"<@{target.requester_id}>",
                ),
                files=discord_files(view, uploads),
                mention=target.requester_id,
            )
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("job %s: could not post the result anew (%s: %s)", view.job_id, type(exc).__name__, exc)
            if not images:
                return
            status = getattr(exc, "status", 0)
            refused = 400 <= status < 500 and status != 429
            raise ImagesNotShown(REFUSED if refused else _NOT_POSTED) from exc
        await self._retarget(message.id)  # so the journal (and history's link) points at the result
