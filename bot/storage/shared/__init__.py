"""The SQL both backends share: one query layer over a small dialect interface.

Each part (``settings.py``, ``usage.py``, ``journal.py``, ``cluster.py``, ``preferences.py``) is
written once against :class:`~bot.storage.shared.base.SqlBase`'s hooks and an
:class:`~bot.storage.shared.dialect.Executor`; :mod:`bot.storage.sqlite` and
:mod:`bot.storage.postgres` supply the connections, the locking and the words
(placeholders, upserts, row locks, the database's clock) that differ.
``repository.py`` composes the parts into :class:`SqlRepository`, the base of both backends. May import
:mod:`bot.base` and the rest of :mod:`bot.storage`, never a backend.
"""
