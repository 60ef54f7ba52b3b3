"""Images: fetched safely, recognised, and fitted under an upload limit.

Owns the guard every outbound fetch goes through (:mod:`.fetch_guard`: no URL reaches the owner's
network), downloads of a prediction's outputs (:mod:`.delivery`) and image sniffing and fitting
(:mod:`.images`). May import :mod:`bot.base`; knows nothing of the API's wire format, jobs or Discord.
"""
