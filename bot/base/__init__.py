"""The ground floor: what every layer may use and nothing of the bot's.

Owns the clock seam (:mod:`.clock`), the errors people read (:mod:`.errors`), money as every layer counts it
(:mod:`.money`) and logging with secrets masked (:mod:`.logs`). Imports only the standard library.
"""
