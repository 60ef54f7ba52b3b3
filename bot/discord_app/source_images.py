"""A variation's image, taken anew from the message it came from: Discord's attachment URLs are signed and
expire (about a day; the ``ex`` parameter of a CDN URL, a hex unix time), or die with their message, so Re-roll
and Remix of a variation never send the URL its job was given back then.

The job's image is an attachment of the message the variation was pressed on, which the variation's own message
replies to (an upscale of it replies to that one in turn): the reply chain is walked up from the pressed message
to the message holding the attachment with the same id, fetched through the bot for a freshly signed URL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import discord

from bot.base.errors import Refusal
from bot.i18n import tr

log = logging.getLogger(__name__)

FETCH_WAIT = 1.0
"""Seconds all the fetches of one look-up may take together: a press is answered within 3 s."""
_MOST_HOPS = 3  # the pressed message's original, its original's (an upscale of a variation), and one more
_ATTACHMENT_PATH = re.compile(r"/attachments/\d+/(?P<id>\d+)/")
GONE = tr("The image this variation started from is no longer there, so nothing was started.")
EXPIRED = tr(
    "The image this started from has expired on Discord, so nothing was started; "
    "run /imagine again with the image attached."
)
UNREACHABLE = tr(
    "The image this variation started from couldn't be fetched from Discord just now, so nothing was started; "
    "press the button again in a moment."
)


def attachment_id(url: str) -> int | None:
    """The attachment id in a Discord attachment URL (``/attachments/<channel>/<id>/<name>``), else ``None``."""
    match = _ATTACHMENT_PATH.search(urlsplit(url).path)
    return int(match["id"]) if match else None


def expires_at(url: str) -> int | None:
    """When a signed Discord CDN URL expires (unix seconds, its ``ex`` parameter in hex); ``None`` if unsigned."""
    values = parse_qs(urlsplit(url).query).get("ex")
    try:
        return int(values[0], 16) if values else None
    except ValueError:
        return None


def expired(url: str, now: float | None = None) -> bool:
    """Whether a signed URL's ``ex`` has passed (an unsigned URL never expires)."""
    expiry = expires_at(url)
    return expiry is not None and expiry <= (time.time() if now is None else now)


async def fresh_image(client: discord.Client, pressed: discord.Message | None, url: str) -> str:
    """``url`` as freshly signed by Discord, from the message up the pressed message's reply chain that holds
    it; ``url`` itself where it is on no such message (an image a member attached to ``/imagine``) and still
    valid. Raises :class:`~bot.base.errors.Refusal` when the image is gone, expired or not fetched in time."""
    wanted = attachment_id(url)
    if wanted is not None and pressed is not None:
        try:
            found = await asyncio.wait_for(_find_attachment(client, pressed, wanted), FETCH_WAIT)
        except discord.NotFound:
            raise Refusal(GONE) from None
        except (TimeoutError, discord.HTTPException) as exc:
            log.warning("could not fetch the message holding attachment %s: %r", wanted, exc)
            if expired(url):
                raise Refusal(UNREACHABLE) from None
            return url
        if found is not None:
            return found
    if expired(url):
        raise Refusal(EXPIRED if wanted is None or pressed is None else GONE)
    return url


async def _find_attachment(client: discord.Client, message: discord.Message, wanted: int) -> str | None:
    """The URL of attachment ``wanted`` on the message ``message`` replies to, or up its chain; ``None`` if the
    chain ends first. Raises ``discord.NotFound`` when a message on the way is gone."""
    for _ in range(_MOST_HOPS):
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        channel = client.get_partial_messageable(reference.channel_id or message.channel.id)
        message = await channel.fetch_message(reference.message_id)
        for attachment in message.attachments:
            if attachment.id == wanted:
                return attachment.url
    return None
