"""Shows a job in Discord: one message, edited as the job moves, within Discord's limits.

- Edits are paced by Discord's budget of edits per message (5 per 5 s; see :mod:`.pacing`): a
  change goes out as soon as the budget allows (within 250 ms after a quiet second), the newest
  view wins, and the final view never waits behind progress. A view that would not change what
  the message shows is not sent at all.
- Progress is best-effort: a progress edit that fails is not tried again in place (the next try
  carries the newest view, when the budget allows), and the final view cancels a progress edit
  still on its way (even one discord.py is retrying by itself), so nothing stale holds it back.
- A final edit that is the window's fifth request is answered ``X-RateLimit-Remaining: 0``, and
  discord.py sleeps out ``Reset-After`` before the call returns: the images are shown already,
  but :meth:`DiscordPresenter.show` returns (and the job gives up its slot) up to a gap (1.25 s) later.
- The interaction token dies after 15 minutes: close to that (or when Discord
  says it is dead) edits go through the channel message route instead.
- If someone deleted the message, the result is posted as a new message that
  mentions the requester, instead of being lost.
- Everything needed to keep showing a job is in a :class:`MessageTarget`,
  which the journal keeps, so a restarted bot picks up where it left off.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

import aiohttp
import discord

from bot.base.clock import Clock, SystemClock
from bot.discord_app.answers import answer_with_message
from bot.discord_app.pacing import EDIT_LIMIT, EDIT_WINDOW, EditPacer
from bot.discord_app.render import alt_text, render_embed
from bot.discord_app.uploads import NOT_SHOWN, JobUploads
from bot.jobs.model import ImagesNotShown, JobState, JobView
from bot.media.images import ImageFile

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)
_REFUSED = f"Discord refused the message with the finished images, {NOT_SHOWN}"
_NOT_TAKEN = f"Discord did not take the finished images after several tries, {NOT_SHOWN}"
_NOT_POSTED = (
    f"The job's message was deleted, and Discord did not take the finished images when they were posted anew, "
    f"{NOT_SHOWN}"
)
_UNREACHABLE = f"The job's message could no longer be reached to show the finished images, {NOT_SHOWN}"

_Payload = tuple[dict[str, Any], list[dict[str, Any]]]
"""An edit's embed and components, as Discord would store them."""
ComponentsFactory = Callable[[JobView], discord.ui.View | None]
TargetListener = Callable[["MessageTarget"], Awaitable[None]]


@dataclass(frozen=True)
class MessageTarget:
    """Where a job's message lives and how to reach it (JSON round-trips through the journal)."""

    application_id: int
    token: str = field(repr=False)
    """The interaction token: edits through the webhook route until it expires. Never logged."""
    token_expires_at: datetime
    channel_id: int | None
    message_id: int | None
    """``None`` for a job journaled before its placeholder was sent: it is looked for, or posted anew."""
    requester_id: int
    upload_limit: int
    reply_to: int | None = None
    """The message this job's message replies to (an upscale or variation replies to its original)."""

    @classmethod
    def of(cls, interaction: discord.Interaction, message_id: int | None) -> MessageTarget:
        """The target of the message that answers (or will answer) ``interaction``."""
        return cls(
            application_id=interaction.application_id,
            token=interaction.token,
            token_expires_at=interaction.created_at + TOKEN_LIFETIME,
            channel_id=interaction.channel_id,
            message_id=message_id,
            requester_id=interaction.user.id,
            upload_limit=interaction.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
        )

    @classmethod
    def reply(cls, interaction: discord.Interaction, reply_to: int) -> MessageTarget:
        """The target of a bot message, not yet posted, that replies to ``reply_to`` in the interaction's channel.

        Only a channel message can reply to another (an interaction's own answer cannot carry a message
        reference), so it is edited through the channel route from the start: no token is kept, and one
        already expired stands in for it. After a restart it is edited (or, never posted, posted) alike.
        """
        return replace(cls.of(interaction, None), token="", token_expires_at=interaction.created_at, reply_to=reply_to)

    def to_json(self) -> dict[str, Any]:
        """JSON-able data for the journal."""
        data = asdict(self)
        data["token_expires_at"] = self.token_expires_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageTarget:
        """The inverse of :meth:`to_json`."""
        return cls(**{**data, "token_expires_at": datetime.fromisoformat(data["token_expires_at"])})


def _code(exc: discord.HTTPException) -> int:
    return int(getattr(exc, "code", 0) or 0)


def _retry_after(exc: discord.HTTPException) -> float:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for key in ("Retry-After", "X-RateLimit-Reset-After"):
        try:
            return min(60.0, max(0.1, float(headers.get(key, ""))))
        except ValueError:
            continue
    return 1.0


class DiscordPresenter:
    """Renders one job's views into its message."""

    def __init__(
        self,
        client: discord.Client,
        target: MessageTarget,
        *,
        components: ComponentsFactory,
        clock: Clock | None = None,
        edit_window: float = EDIT_WINDOW,
        edit_limit: int = EDIT_LIMIT,
        token_margin: float = 60.0,
        attempts: int = 5,
        shown: JobView | None = None,
        interaction: discord.Interaction | None = None,
        on_target: TargetListener | None = None,
    ) -> None:
        """``shown`` is the view the message already shows (none after a restart).

        With the ``interaction`` the message answered, edits use its ``@original``
        route; after a restart they address the message by id on the same webhook.
        ``on_target`` hears of a message found or posted for a target that had none,
        or posted anew for one that was deleted (so the journal can point at it).
        ``edit_limit`` edits per ``edit_window`` seconds is Discord's budget of edits per message.
        """
        self._client = client
        self._interaction = interaction
        self.target = target
        self._components = components
        self._clock = clock or SystemClock()
        self.pacer = EditPacer(edit_window, edit_limit)
        """The message's edit budget, and the pacer's latest decisions."""
        self._token_deadline = target.token_expires_at - timedelta(seconds=token_margin)
        self._attempts = attempts
        self._latest: JobView | None = None
        self._seen_at: float | None = None  # when the oldest view not yet sent came
        self._resume_at = 0.0  # no progress edit before then: what the last failed one was told to wait
        self._shown = shown
        self._shown_payload: _Payload | None = None  # what the message shows, rendered when first compared
        self._last_render: tuple[JobView, _Payload] | None = None
        self._wake = asyncio.Event()
        self._finished = False
        self._token_dead = False
        self._deleted = False
        self._posting = False  # a new message is on its way (and its id to the journal): never cancelled
        self._lock = asyncio.Lock()
        self._next_estimate: JobView | None = None
        self._on_target = on_target
        self._uploads = JobUploads(target.upload_limit)
        self._pump_task = asyncio.create_task(self._pump(), name="discord-presenter")

    @classmethod
    async def open(
        cls,
        interaction: discord.Interaction,
        view: JobView,
        *,
        components: ComponentsFactory,
        clock: Clock | None = None,
        edit_window: float = EDIT_WINDOW,
        edit_limit: int = EDIT_LIMIT,
        on_target: TargetListener | None = None,
    ) -> DiscordPresenter:
        """Answer the interaction with the placeholder (in time: see :mod:`.answers`) and present the job there."""
        answer = await answer_with_message(
            interaction,
            embed=render_embed(view),
            view=components(view) or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        presenter = cls(
            interaction.client,
            MessageTarget.of(interaction, answer.message_id),
            components=components,
            clock=clock,
            edit_window=edit_window,
            edit_limit=edit_limit,
            shown=view,
            interaction=interaction,
            on_target=on_target,
        )
        if answer.edited_deferred:  # the placeholder was an edit of "thinking…": one of the message's edits
            presenter.pacer.sent(presenter._clock.monotonic())
        return presenter

    @classmethod
    async def post_reply(
        cls,
        client: discord.Client,
        target: MessageTarget,
        view: JobView,
        *,
        components: ComponentsFactory,
        clock: Clock | None = None,
        edit_window: float = EDIT_WINDOW,
        edit_limit: int = EDIT_LIMIT,
        on_target: TargetListener | None = None,
    ) -> DiscordPresenter:
        """Post the placeholder as a channel message replying to ``target.reply_to``, and present the job there."""
        if target.channel_id is None:
            raise _NoRoute
        channel = client.get_partial_messageable(target.channel_id)
        message = await channel.send(
            embed=render_embed(view),
            view=components(view) or discord.utils.MISSING,
            **_reply(target),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        return cls(
            client,
            replace(target, message_id=message.id),
            components=components,
            clock=clock,
            edit_window=edit_window,
            edit_limit=edit_limit,
            shown=view,
            on_target=on_target,
        )

    # ----------------------------------------------------------------- engine side

    async def show(self, view: JobView) -> None:
        """Take a new view: coalesced when running, delivered before returning when terminal."""
        now = self._clock.monotonic()
        if not view.terminal and _estimated(view) and self._unshown_reading():
            self._next_estimate = view  # what the model's own logs said is shown first; the estimate follows
            return
        self._next_estimate = None
        self._latest = view
        if not view.terminal:
            if self._seen_at is None:
                self._seen_at = now
            self._wake.set()
            return
        self._finished = True
        self._wake.set()
        self._cancel_stale_progress()
        try:
            async with self._lock:
                # Never behind progress: progress edits leave the final its place in every window.
                self.pacer.decide(now, self.pacer.final_due(self._clock.monotonic()), final=True)
                await self._deliver_final(view)
        finally:
            self._pump_task.cancel()

    def _cancel_stale_progress(self) -> None:
        """Stop a progress edit on its way: the final replaces it, and must not wait out its answer or retries.

        Never while a new message is being posted (the placeholder of a job journaled before it was shown):
        cancelled, it may have gone out all the same, and the final would post a second one, or the journal
        never hear where it is. Nor once the edit's answer is in and discord.py is winding the request up
        (see :func:`_winding_up`).
        """
        if self.target.message_id is not None and not self._posting and not _winding_up(self._pump_task):
            self._pump_task.cancel()  # the pump's request still counts: its ``sent`` is in a ``finally``

    def _unshown_reading(self) -> bool:
        """A view with progress read from the logs waits to be shown."""
        latest = self._latest
        return latest is not None and latest != self._shown and latest.progress is not None and not _estimated(latest)

    async def close(self) -> None:
        """Stop editing: the process is going away (the journal lets a restart carry on)."""
        self._finished = True
        self._pump_task.cancel()
        await asyncio.gather(self._pump_task, return_exceptions=True)

    # ----------------------------------------------------------------- internals

    async def _pump(self) -> None:
        """Sends the newest view once the budget lets it go; the final view is :meth:`show`'s own."""
        while not self._finished:
            await self._wake.wait()
            self._wake.clear()
            seen_at = self._clock.monotonic() if self._seen_at is None else self._seen_at
            due = max(self.pacer.progress_due(seen_at, self._clock.monotonic()), self._resume_at)
            while not self._finished and (wait := due - self._clock.monotonic()) > 0:
                await self._clock.sleep(wait)
            async with self._lock:
                view = self._latest
                if self._finished or self._deleted:
                    return
                self._seen_at = None
                if view is None or view == self._shown:
                    continue
                if self._rendered(view) == self._shown_rendered():
                    self._shown = view  # the message shows it already (say, a change the embed leaves out)
                else:
                    self.pacer.decide(seen_at, due, final=False)
                    try:
                        retry_in = await self._attempt(view, (), attempt=1, final=False)
                    except Exception:
                        log.exception("could not show a progress update; the next one will try again")
                    else:
                        if retry_in is not None:  # not tried again in place: the newest view goes when it may
                            self._seen_at = seen_at  # still unsent, and older than any view that came since
                            self._resume_at = self._clock.monotonic() + retry_in
                            self._wake.set()
                if self._next_estimate is not None:
                    self._latest, self._next_estimate = self._next_estimate, None
                    self._seen_at = self._clock.monotonic()
                    self._wake.set()

    def _rendered(self, view: JobView) -> _Payload:
        """What an edit to ``view`` would make the message show, attachments aside (the last view's is kept:
        a view compared and then sent is rendered once)."""
        if self._last_render is not None and self._last_render[0] is view:
            return self._last_render[1]
        components = self._components(view)
        payload = dict(render_embed(view).to_dict()), components.to_components() if components is not None else []
        self._last_render = view, payload
        return payload

    def _shown_rendered(self) -> _Payload | None:
        """What the message shows now, rendered (``None``: nothing known to be shown)."""
        if self._shown_payload is None and self._shown is not None:
            self._shown_payload = self._rendered(self._shown)
        return self._shown_payload

    def _token_usable(self) -> bool:
        return not self._token_dead and discord.utils.utcnow() < self._token_deadline

    @staticmethod
    def _files(view: JobView, uploads: tuple[ImageFile, ...]) -> list[discord.File]:
        """Fresh files of ``uploads`` (a sent file is spent), each described (alt text) by the job's prompt."""
        description = alt_text(view) if uploads else None
        return [
            discord.File(io.BytesIO(upload.data), filename=upload.filename, description=description)
            for upload in uploads
        ]

    async def _deliver_final(self, view: JobView) -> None:
        """Edit the message to the final ``view``, tried again until it goes through or the attempts run out.

        A final view with images raises :class:`ImagesNotShown` on every outcome but a message that really
        carries them (nothing is charged for images nobody saw); other views are given up on with a log.
        """
        images = _delivered_images(view)
        for attempt in range(1, self._attempts + 1):
            uploads = await self._uploads.fit(view.job_id, images)
            now = self._clock.monotonic()
            if (due := self.pacer.final_due(now)) > now:  # only retries ever fill the window before the final
                await self._clock.sleep(due - now)
            retry_in = await self._attempt(view, uploads, attempt=attempt, final=True)
            if retry_in is None:
                return
            await self._clock.sleep(retry_in)
        if images:  # the view without them may still go through
            log.warning("gave up sending the images of job %s after %d attempts", view.job_id, self._attempts)
            raise ImagesNotShown(_NOT_TAKEN)
        log.error("gave up showing job %s (%s) after %d attempts", view.job_id, view.state, self._attempts)

    async def _attempt(
        self, view: JobView, uploads: tuple[ImageFile, ...], *, attempt: int, final: bool
    ) -> float | None:
        """One request showing ``view`` (with ``uploads``, a final's images as they fit), falling back from the
        token to the channel to a new message.

        ``None`` once nothing is left to try (shown, or given up on), else the seconds to wait before the next
        try: a 429's ``Retry-After``, a back-off after a failure of Discord or the connection, none after a
        route was found dead or images too large were shrunk.
        """
        images = _delivered_images(view) if final else ()
        try:
            try:
                await self._edit(view, self._files(view, uploads), final=final)
            finally:
                self.pacer.sent(self._clock.monotonic())  # tried: Discord may have counted it
        except _NoRoute:
            log.warning("job %s: interaction token expired and no channel to edit in", view.job_id)
            if images:
                raise ImagesNotShown(_UNREACHABLE) from None
            return None
        except discord.NotFound as exc:
            if _code(exc) == 10008 or not self._token_usable():
                self._deleted = True
                if final:
                    await self._repost(view, images)
                return None
            self._token_dead = True  # 10015 unknown webhook, 10062 unknown interaction
            return 0.0
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # discord.py's webhook adapter passes connection failures through: worth another try.
            log.info("edit of job %s failed (%s; attempt %d)", view.job_id, type(exc).__name__, attempt)
            return _backoff(attempt)
        except discord.HTTPException as exc:
            retry_in = 0.0
            if exc.status == 401 or _code(exc) in (50027, 10015):
                self._token_dead = True
            elif (exc.status == 413 or _code(exc) == 40005) and uploads:
                self._uploads.shrink(view.job_id, uploads)  # at the floor: ImagesNotShown
            elif exc.status == 429:
                retry_in = _retry_after(exc)
            elif exc.status == 403 and not self._token_usable():
                if final:
                    await self._repost(view, images)
                return None
            elif exc.status >= 500:
                retry_in = _backoff(attempt)
            elif images:  # refused for good (400/50035 and the like): say so without them
                raise ImagesNotShown(_REFUSED) from exc
            else:
                raise
            log.info("edit of job %s answered %s (attempt %d)", view.job_id, exc.status, attempt)
            return retry_in
        self._shown, self._shown_payload = view, None  # rendered when next compared (the last render is kept)
        return None

    async def _edit(self, view: JobView, files: list[discord.File], *, final: bool) -> None:
        if self.target.message_id is None:
            self._posting = True  # until the journal has the new message's id
            try:
                if await self._post_if_never_shown(view, files):
                    return
            finally:
                self._posting = False
        target = self.target
        kwargs: dict[str, Any] = {"embed": render_embed(view), "view": self._components(view)}
        if final:
            kwargs["attachments"] = files
        if self._token_usable():
            if self._interaction is not None:
                await self._interaction.edit_original_response(**kwargs)
            else:
                await self._webhook().edit_message(cast(int, target.message_id), **kwargs)
            return
        if target.channel_id is None or target.message_id is None:
            raise _NoRoute
        channel = self._client.get_partial_messageable(target.channel_id)
        await channel.get_partial_message(target.message_id).edit(**kwargs)

    def _webhook(self) -> discord.Webhook:
        return discord.Webhook.partial(self.target.application_id, self.target.token, client=self._client)

    async def _post_if_never_shown(self, view: JobView, files: list[discord.File]) -> bool:
        """A job journaled just before a crash may never have shown its placeholder: find it, or post the job.

        ``True`` if ``view`` was posted as a new message (nothing left to edit).
        """
        if self._token_usable():
            try:
                # "@original" in place of an id: the route Discord serves for the interaction's own answer.
                original = await self._webhook().fetch_message(cast(int, "@original"))
            except discord.NotFound:
                pass  # the placeholder never went out
            except discord.HTTPException as exc:
                if exc.status >= 500 or exc.status == 429:
                    raise
                self._token_dead = True
            else:
                await self._retarget(original.id)
                return False
        if self.target.channel_id is None:
            raise _NoRoute
        channel = self._client.get_partial_messageable(self.target.channel_id)
        requester = self.target.requester_id
        message = await channel.send(
            content=f"<@{requester}> here is your /imagine (the bot restarted before it could answer you).",
            embed=render_embed(view),
            files=files,
            view=self._components(view) or discord.utils.MISSING,
            **_reply(self.target),
            allowed_mentions=discord.AllowedMentions(users=[discord.Object(requester)]),
        )
        # The bot's own message: edited through the channel route from now on, not the interaction's webhook.
        self._token_dead = True
        await self._retarget(message.id)
        return True

    async def _retarget(self, message_id: int) -> None:
        self.target = replace(self.target, message_id=message_id)
        if self._on_target is not None:
            try:
                await self._on_target(self.target)
            except Exception:
                log.exception("could not record where job's message is")

    async def _repost(self, view: JobView, images: tuple[ImageFile, ...]) -> None:
        """The message is gone: post the result anew, mentioning the requester.

        Tried once (a post that failed may have gone out all the same): with images, any failure raises
        :class:`ImagesNotShown`, and the view without them is shown (posted) again.
        """
        target = self.target
        if target.channel_id is None:
            log.warning("job %s: message deleted and no channel to post in; result not shown", view.job_id)
            if images:
                raise ImagesNotShown(_UNREACHABLE)
            return
        channel = self._client.get_partial_messageable(target.channel_id)
        content = f"<@{target.requester_id}> the message for your /imagine was deleted, so here is the result."
        uploads = await self._uploads.fit(view.job_id, images)
        try:
            message = await channel.send(
                content=content,
                embed=render_embed(view),
                files=self._files(view, uploads),
                view=self._components(view) or discord.utils.MISSING,
                **_reply(target),
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(target.requester_id)]),
            )
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("job %s: could not post the result anew (%s: %s)", view.job_id, type(exc).__name__, exc)
            if not images:
                return
            status = getattr(exc, "status", 0)
            refused = 400 <= status < 500 and status != 429
            raise ImagesNotShown(_REFUSED if refused else _NOT_POSTED) from exc
        await self._retarget(message.id)  # so the journal (and history's link) points at the result


def _reply(target: MessageTarget) -> dict[str, Any]:
    """``send`` arguments making a reply to the target's original message, if it has one.

    No error if that message is gone, and no ping of its author (the requester is named in the embed).
    """
    if target.reply_to is None or target.channel_id is None:
        return {}
    reference = discord.MessageReference(
        message_id=target.reply_to, channel_id=target.channel_id, fail_if_not_exists=False
    )
    return {"reference": reference, "mention_author": False}


def _winding_up(task: asyncio.Task[None]) -> bool:
    """Whether ``task`` waits in the exit of an async context manager: a request whose answer came is winding up.

    discord.py's webhook adapter sleeps out ``Reset-After`` after an answer that said ``Remaining: 0`` in the
    ``__aexit__`` of its lock for the interaction's token, and releases that lock only after the sleep:
    cancelled there, the lock stays held, and every later request through the token (the final's first)
    waits forever. Left alone, the request ends within that wait.
    """
    awaited: Any = task.get_coro()
    while awaited is not None:
        code = getattr(awaited, "cr_code", None)
        if code is not None and code.co_name == "__aexit__":
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def _delivered_images(view: JobView) -> tuple[ImageFile, ...]:
    """The images a final view carries to the message (a job that did not succeed has none to show)."""
    return view.images if view.state is JobState.SUCCEEDED else ()


def _backoff(attempt: int) -> float:
    """Seconds to wait after a failure of Discord or of the connection before the next try."""
    return min(8.0, 0.5 * 2.0**attempt)


def _estimated(view: JobView) -> bool:
    return view.progress is not None and view.progress.estimated


class _NoRoute(Exception):
    """The token is dead and there is no channel message to edit instead."""
