"""SQL expressions that read values out of a journaled job's JSON request, in each dialect's words, for the
schema's upgrade steps (:mod:`bot.storage.schema`) that copy them into columns of their own.

Each one reads what is there and stands for 0 (or NULL) where nothing valid is: an upgrade must never fail
on an old row it cannot read.
"""

from __future__ import annotations


def sqlite_json_count(key: str) -> str:
    """SQL for a whole number ≥ 0 at ``key`` of a job's JSON request; 0 if it holds none."""
    return (
        f"CASE WHEN json_type(request, '$.{key}') = 'integer' THEN MAX(json_extract(request, '$.{key}'), 0) ELSE 0 END"
    )


def postgres_json_count(key: str, most: int) -> str:
    """SQL for a whole number from 0 to ``most`` at ``key`` of a job's JSON request; 0 if it holds none."""
    return (
        f"CASE WHEN jsonb_typeof(request -> '{key}') = 'number' "
        f"THEN round(LEAST(GREATEST((request ->> '{key}')::NUMERIC, 0), {most})) ELSE 0 END"
    )


def postgres_json_date(key: str) -> str:
    """SQL for the date at ``key`` of a job's JSON request (``YYYY-MM-DD``); NULL unless a real day from year 1.

    Checked before any cast, in nested CASE expressions (the only order PostgreSQL promises): a cast of
    ``2024-02-30`` would raise and abort the whole upgrade. The day is compared with its month's length,
    the month's first day plus a month less a day (``make_date`` cannot fail once year and month are valid).
    """
    text = f"(request ->> '{key}')"
    return (
        f"CASE WHEN jsonb_typeof(request -> '{key}') = 'string' "
        f"AND {text} ~ '^(?!0000)[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' "
        f"THEN CASE WHEN substr({text}, 9, 2)::INTEGER <= EXTRACT(DAY FROM "
        f"make_date(substr({text}, 1, 4)::INTEGER, substr({text}, 6, 2)::INTEGER, 1) "
        f"+ INTERVAL '1 month' - INTERVAL '1 day') "
        f"THEN {text}::DATE END END"
    )
