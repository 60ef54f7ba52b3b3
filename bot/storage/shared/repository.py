"""Every shared part in one class, for a backend's repository to build on."""

from __future__ import annotations

from bot.storage.shared.api_keys import SqlApiKeys
from bot.storage.shared.cluster import SqlCluster
from bot.storage.shared.command_syncs import SqlCommandSyncs
from bot.storage.shared.journal import SqlJournal
from bot.storage.shared.preferences import SqlPreferences
from bot.storage.shared.safety import SqlSafety
from bot.storage.shared.settings import SqlSettings
from bot.storage.shared.usage import SqlUsage


class SqlRepository(
    SqlSettings, SqlSafety, SqlUsage, SqlJournal, SqlCluster, SqlPreferences, SqlCommandSyncs, SqlApiKeys
):
    """The shared SQL of :class:`bot.storage.Repository`: all but reading a guild's whole settings (each
    backend reads and caches them its own way), identify turns and webhook notifications."""
