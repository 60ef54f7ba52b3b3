"""The Discord adapter: the only part of the bot that knows Discord.

Owns the ``commands.Bot`` subclass that wires :class:`bot.core.Core` in ``setup_hook`` (:mod:`.client`,
:mod:`.runner`, :mod:`.sharding`), starting jobs from interactions (:mod:`.starter`; one job or a set:
:mod:`.job_launch`, :mod:`.job_sets`), the presenter that turns job views into paced message edits
(:mod:`.presenter`, :mod:`.message_routes`, :mod:`.message_target`, :mod:`.render`, :mod:`.pacing`,
:mod:`.uploads`), persistent buttons (:mod:`.buttons`, :mod:`.button_actions`), ``/describe`` and its
suggestions' buttons (:mod:`.describe_command`, :mod:`.describe_answer`), and what moderators and members
read (:mod:`.admin_views`, :mod:`.history`, :mod:`.modlog`, :mod:`.answers`), what a member may do
(:mod:`.members`), attachments checked before they are used (:mod:`.attachments`), the gateway's health
check (:mod:`.health`), the commands synced when they changed (:mod:`.command_sync`). May import every layer
below it; the cogs in ``cogs/`` are thin commands over it.
"""

import warnings

# discord.py imports ``audioop`` (deprecated since Python 3.11) for voice; the bot has no voice, so the
# warning concerns no owner. Set before anything here imports discord.
warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
