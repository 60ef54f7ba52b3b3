"""Reading a Discord attachment URL: its attachment id and its signature's expiry (``ex``, hex unix time)."""

from __future__ import annotations

from bot.discord_app.source_images import attachment_id, expired, expires_at

SIGNED = "https://cdn.discordapp.com/attachments/111/222/fox.png?ex=65f0a1b2&is=65ef5032&hm=0a1b"


def test_a_signed_url_names_its_attachment_and_expiry() -> None:
    assert attachment_id(SIGNED) == 222
    assert expires_at(SIGNED) == 0x65F0A1B2
    assert expired(SIGNED, now=0x65F0A1B2) and not expired(SIGNED, now=0x65F0A1B1)


def test_an_unsigned_or_foreign_url_never_expires() -> None:
    assert expires_at("https://example.com/fox.png") is None and not expired("https://example.com/fox.png")
    assert attachment_id("https://example.com/fox.png") is None
    assert expires_at("https://cdn.discordapp.com/attachments/1/2/a.png?ex=zz") is None
