"""The Discord adapter: the only part of the bot that knows Discord.

Owns the ``commands.Bot`` subclass that wires :class:`bot.core.Core` in ``setup_hook`` (:mod:`.client`,
:mod:`.runner`, :mod:`.sharding`), starting jobs from interactions (:mod:`.starter`), the presenter that
turns job views into paced message edits (:mod:`.presenter`, :mod:`.message_routes`,
:mod:`.message_target`, :mod:`.render`, :mod:`.pacing`, :mod:`.uploads`), persistent buttons
(:mod:`.buttons`, :mod:`.button_actions`), and what moderators and members read (:mod:`.admin_views`,
:mod:`.history`, :mod:`.modlog`). May import every layer below it; the cogs in ``cogs/`` are thin
commands over it.
"""
