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
  which the journal keeps, so a restarted bot picks up where it left off,
  in the same language: the message is written in the server's locale (the whole channel reads it).

The routes to the message (token, channel, a new message) are :mod:`.message_routes`'; the target
is :mod:`.message_target`'s. This module decides what to send, when, and what to try again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Required, TypedDict, Unpack

import aiohttp
import discord

from bot.base.clock import Clock, SystemClock
from bot.discord_app.answers import answer_with_message
from bot.discord_app.message_routes import (
    REFUSED,
    UNREACHABLE,
    ComponentsFactory,
    FilesSpent,
    MessageRoutes,
    NoRoute,
    TargetListener,
    discord_files,
    post_message,
)
from bot.discord_app.message_target import MessageTarget, server_locale
from bot.discord_app.pacing import EDIT_LIMIT, EDIT_WINDOW, EditPacer
from bot.discord_app.render import render_embed
from bot.i18n import tr
from bot.jobs.model import ImagesNotShown, JobState, JobView
from bot.media.images import ImageFile

__all__ = ["ComponentsFactory", "DiscordPresenter", "MessageTarget", "PresenterOptions", "TargetListener"]

log = logging.getLogger(__name__)

_NOT_TAKEN = tr(
    "Discord did not take the finished images after several tries, so they are not shown here, and nothing is "
    "charged for them."
)

_Payload = tuple[dict[str, Any], list[dict[str, Any]]]
"""An edit's embed and components, as Discord would store them."""


class PresenterOptions(TypedDict, total=False):
    """What every presenter of a job is given, however its message came to be."""

    components: Required[ComponentsFactory]
    clock: Clock | None
    edit_window: float
    edit_limit: int
    on_target: TargetListener | None


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
        self._routes = MessageRoutes(
            client,
            target,
            components=components,
            token_margin=token_margin,
            interaction=interaction,
            on_target=on_target,
        )
        self._components = components
        self._clock = clock or SystemClock()
        self.pacer = EditPacer(edit_window, edit_limit)
        """The message's edit budget, and the pacer's latest decisions."""
        self._attempts = attempts
        self._latest: JobView | None = None
        self._seen_at: float | None = None  # when the oldest view not yet sent came
        self._resume_at = 0.0  # no progress edit before then: what the last failed one was told to wait
        self._shown = shown
        self._shown_payload: _Payload | None = None  # what the message shows, rendered when first compared
        self._last_render: tuple[JobView, _Payload] | None = None
        self._wake = asyncio.Event()
        self._finished = False
        self._lock = asyncio.Lock()
        self._next_estimate: JobView | None = None
        self._pump_task = asyncio.create_task(self._pump(), name="discord-presenter")

    @property
    def target(self) -> MessageTarget:
        """Where the job's message is now (a message posted anew moves it)."""
        return self._routes.target

    @classmethod
    async def open(
        cls, interaction: discord.Interaction, view: JobView, **options: Unpack[PresenterOptions]
    ) -> DiscordPresenter:
        """Answer the interaction with the placeholder (in time: see :mod:`.answers`) and present the job there."""
        locale = server_locale(interaction)  # the whole channel reads the job's message
        answer = await answer_with_message(
            interaction,
            embed=render_embed(view, locale),
            view=options["components"](view, locale) or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        target = MessageTarget.of(interaction, answer.message_id)
        presenter = cls(interaction.client, target, shown=view, interaction=interaction, **options)
        if answer.edited_deferred:  # the placeholder was an edit of "thinking…": one of the message's edits
            presenter.pacer.sent(presenter._clock.monotonic())
        return presenter

    @classmethod
    async def post_reply(
        cls, client: discord.Client, target: MessageTarget, view: JobView, **options: Unpack[PresenterOptions]
    ) -> DiscordPresenter:
        """Post the placeholder as a channel message replying to ``target.reply_to``, and present the job there."""
        message = await post_message(client, target, view, options["components"], first=True)
        return cls(client, replace(target, message_id=message.id), shown=view, **options)

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
        if self.target.message_id is not None and not self._routes.posting and not _winding_up(self._pump_task):
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
                if self._finished or self._routes.deleted:
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
        locale = self.target.locale
        components = self._components(view, locale)
        rows = components.to_components() if components is not None else []
        payload = dict(render_embed(view, locale).to_dict()), rows
        self._last_render = view, payload
        return payload

    def _shown_rendered(self) -> _Payload | None:
        """What the message shows now, rendered (``None``: nothing known to be shown)."""
        if self._shown_payload is None and self._shown is not None:
            self._shown_payload = self._rendered(self._shown)
        return self._shown_payload

    async def _deliver_final(self, view: JobView) -> None:
        """Edit the message to the final ``view``, tried again until it goes through or the attempts run out.

        A final view with images raises :class:`ImagesNotShown` on every outcome but a message that really
        carries them (nothing is charged for images nobody saw); other views are given up on with a log.
        """
        images = _delivered_images(view)
        for attempt in range(1, self._attempts + 1):
            uploads = await self._routes.uploads.fit(view.job_id, images)
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
                await self._routes.edit(view, discord_files(view, uploads), final=final)
            finally:
                self.pacer.sent(self._clock.monotonic())  # tried: Discord may have counted it
        except FilesSpent:
            return 0.0
        except NoRoute:
            log.warning("job %s: interaction token expired and no channel to edit in", view.job_id)
            if images:
                raise ImagesNotShown(UNREACHABLE) from None
            return None
        except discord.NotFound as exc:
            if _code(exc) == 10008 or not self._routes.token_usable():
                self._routes.deleted = True
                if final:
                    await self._routes.repost(view, images)
                return None
            self._routes.token_dead = True  # 10015 unknown webhook, 10062 unknown interaction
            return 0.0
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # discord.py's webhook adapter passes connection failures through: worth another try.
            log.info("edit of job %s failed (%s; attempt %d)", view.job_id, type(exc).__name__, attempt)
            return _backoff(attempt)
        except discord.HTTPException as exc:
            retry_in = 0.0
            if exc.status == 401 or _code(exc) in (50027, 10015):
                self._routes.token_dead = True
            elif (exc.status == 413 or _code(exc) == 40005) and uploads:
                self._routes.uploads.shrink(view.job_id, uploads)  # at the floor: ImagesNotShown
            elif exc.status == 429:
                retry_in = _retry_after(exc)
            elif exc.status == 403 and not self._routes.token_usable():
                if final:
                    await self._routes.repost(view, images)
                return None
            elif exc.status >= 500:
                retry_in = _backoff(attempt)
            elif images:  # refused for good (400/50035 and the like): say so without them
                raise ImagesNotShown(REFUSED) from exc
            else:
                raise
            log.info("edit of job %s answered %s (attempt %d)", view.job_id, exc.status, attempt)
            return retry_in
        self._shown, self._shown_payload = view, None  # rendered when next compared (the last render is kept)
        return None


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
