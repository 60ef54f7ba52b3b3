"""Fakes of the two services the bot talks to, speaking their real wire protocols on 127.0.0.1.

:mod:`.discord` is Discord (REST v10 and the gateway, for a real discord.py client), :mod:`.replicate` the
prediction API; both serve through :mod:`.server`. :mod:`.images` makes test images, :mod:`.tcp` is a
freezable TCP proxy.
"""
