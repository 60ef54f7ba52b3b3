"""A faithful, in-process fake of Replicate's HTTP predictions API (aiohttp, 127.0.0.1 only).

Quick start::

    async with FakeReplicate(prefix="/replicate") as fake:
        url = f"{fake.base_url}/v1/models/black-forest-labs/flux-schnell/predictions"
        ...  # point the code under test at fake.base_url with token fake.token
        pred = await fake.wait_for_status(fake.last_prediction.id, "succeeded")

What it serves (every API route lives under ``prefix`` and needs ``Authorization: Bearer <token>`` or
``Token <token>``):

* ``POST /v1/models/{owner}/{name}/predictions`` (official models), ``POST /v1/predictions`` (``version`` =
  ``owner/name``, ``owner/name:<id>`` or a bare ``<id>``), ``GET /v1/predictions/{id}``,
  ``POST /v1/predictions/{id}/cancel``, ``GET /v1/predictions`` (newest first, pages of
  :attr:`~FakeReplicate.list_page_size` whose ``next`` link points at ``urls_base``; 404 with
  ``serve_list = False``, like a gateway), ``GET /v1/models/{owner}/{name}``,
  ``GET /v1/models/{owner}/{name}/versions`` and ``GET /v1/models/{owner}/{name}/versions/{id}``,
  ``GET /v1/webhooks/default/secret`` (``{"key": "whsec_…"}`` = :attr:`~FakeReplicate.webhook_secret`, seeded;
  404 with ``serve_webhook_secret = False``, like a gateway), ``GET /v1/account``.
* Accounts (``accounts.py``): every token is an account with its own predictions (another account's are "not
  found" and not listed) and webhook secret; ``add_account(token)``, ``revoke(token)`` (401 from then on);
  each recorded request's ``token`` says which account sent it.
* Output files at ``/files/{prediction_id}/out-{i}.{ext}`` *outside* the prefix, with no auth, like
  ``replicate.delivery``.

Behaviour follows Replicate's OpenAPI document and recorded traffic: predictions go ``starting`` →
``processing`` (tqdm progress in ``logs``) → ``succeeded``/``failed``/``canceled``, or ``starting`` →
``aborted``; text models (a captioner returning a string, a vision-language model whose list of string pieces
grows while it runs, as a language model streams) succeed with text instead of files; ``Prefer: wait[=n]``
holds the create response; ``input`` is validated against the model's
cog schema with Replicate's 422 problem+json shape; errors are ``application/problem+json``;
``urls.*`` point at ``https://api.replicate.com`` (as gateways pass them through) so a client that
follows them would leave the fake.

Webhooks: a create with ``webhook`` (Replicate requires HTTPS; the fake accepts only ``http(s)://`` URLs on
127.0.0.1/localhost and refuses others, and unknown ``webhook_events_filter`` values, with a 422) gets the
prediction object (exactly what GET returns) POSTed for the events of ``webhook_events_filter`` (default
``output`` and ``completed``): ``start`` at creation, ``logs``/``output`` when they change (each at most once
per :attr:`~FakeReplicate.webhook_min_interval` = 0.5 s, the latest state wins, a pending one superseded by
``completed``), ``completed`` on any terminal status. One background task per prediction sends them in
order, never holding an API response. Signed per Standard Webhooks (``webhook-id`` ``msg_…``,
``webhook-timestamp``, ``webhook-signature`` ``v1,…``; :func:`sign_webhook`). Only ``completed`` is retried,
after a connection failure, timeout or non-2xx, on :attr:`~FakeReplicate.webhook_retry_delays` with the same
``webhook-id``; redirects are not followed. Every attempt is in :attr:`~FakeReplicate.webhook_deliveries`
(:class:`WebhookDelivery`); wait with :meth:`~FakeReplicate.wait_for_webhooks`. Switches:
:meth:`~FakeReplicate.lose_next_webhooks` (``drop``: never sent, never retried; ``fail``: attempts fail so
retries deliver later), :meth:`~FakeReplicate.delay_webhooks`, :meth:`~FakeReplicate.tamper_next_webhook`
(body changed after signing), :meth:`~FakeReplicate.stale_next_webhook` (old timestamp, valid signature),
:meth:`~FakeReplicate.replay_webhook` (an earlier delivery again, byte for byte).

Tests steer it with :class:`Scenario` (the timeline and outputs of a prediction; a global default plus a
FIFO of per-prediction overrides), fault injection (:meth:`FakeReplicate.fail_next`,
:meth:`~FakeReplicate.throttle_next`, :meth:`~FakeReplicate.reset_next`,
:meth:`~FakeReplicate.malformed_next`, :meth:`~FakeReplicate.insufficient_credit_next`,
:meth:`~FakeReplicate.stall_next`), seeded random faults (:meth:`FakeReplicate.chaos`, see :class:`Chaos`),
malicious output hosts (:meth:`~FakeReplicate.redirect_url`, :meth:`~FakeReplicate.endless_url`,
:meth:`~FakeReplicate.not_image_url`, ``Scenario(output_override=...)``), optional
sliding-window rate limits (:class:`RateLimits`), manual timeline drivers
(:meth:`~FakeReplicate.start_processing`, :meth:`~FakeReplicate.set_progress`,
:meth:`~FakeReplicate.finish`, ...) and event waits (:meth:`~FakeReplicate.wait_for_status`,
:meth:`~FakeReplicate.wait_for_requests`, :meth:`~FakeReplicate.wait_for_webhooks`,
:meth:`~FakeReplicate.wait_until`) so no test has to sleep.

Modules (lowest first; each owns one responsibility, :class:`FakeReplicate` in ``fake`` puts the parts together):

* ``vocabulary``: statuses, route kinds, webhook events, fault names, fixed texts, JSON and problem+json answers.
* ``schemas``: cog schemas (:func:`cog_openapi_schema`) and those of the default models (three image models,
  flux-dev also from an image, a captioner, a vision-language model); ``safety_schemas``: flux-1.1-pro, whose
  safety checker is turned by ``safety_tolerance`` (flux-schnell's and flux-dev's by ``disable_safety_checker``).
* ``models``: :class:`FakeModel` and :class:`FakeVersion`, registering them, and the default models.
* ``validation``: the 422 input and webhook checks (:func:`validate_input`, :class:`InvalidField`).
* ``predictions``: :class:`Scenario`, :class:`FakePrediction`, creating and completing predictions.
* ``timeline``: the timeline, tqdm progress in ``logs`` (:func:`tqdm_line`) and the manual drivers.
* ``outputs``: output files (:class:`FakeFile`), text models' answers, stalled downloads and hostile output hosts.
* ``faults``: scripted faults (:class:`Fault`) and seeded chaos (:class:`Chaos`, :class:`ChaosEvent`).
* ``ratelimits``: :class:`RateLimits` and their enforcement.
* ``webhooks``: sending, signing (:func:`sign_webhook`), retrying and bending webhooks (:class:`WebhookDelivery`).
* ``http``: the recording middleware (:class:`RecordedRequest`), and authentication.
* ``routes``: the API route handlers.
* ``fake``: :class:`FakeReplicate`.
"""

from tests.fakes.replicate.fake import FakeReplicate
from tests.fakes.replicate.faults import Chaos, ChaosEvent, Fault
from tests.fakes.replicate.http import RecordedRequest
from tests.fakes.replicate.models import FakeModel, FakeVersion
from tests.fakes.replicate.outputs import CAPTION, VISION_ANSWER, FakeFile, llm_pieces
from tests.fakes.replicate.predictions import FakePrediction, Scenario
from tests.fakes.replicate.ratelimits import RateLimits
from tests.fakes.replicate.safety_schemas import FLUX_PRO, FLUX_PRO_OPENAPI_SCHEMA, FLUX_PRO_VERSION
from tests.fakes.replicate.schemas import (
    ASPECT_RATIOS,
    CAPTIONER,
    CAPTIONER_OPENAPI_SCHEMA,
    CAPTIONER_VERSION,
    FLUX_DEV,
    FLUX_DEV_OPENAPI_SCHEMA,
    FLUX_SCHNELL,
    FLUX_SCHNELL_DP_VERSION,
    FLUX_SCHNELL_INPUT_SCHEMA,
    FLUX_SCHNELL_LORA,
    FLUX_SCHNELL_LORA_INPUT_SCHEMA,
    FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
    FLUX_SCHNELL_LORA_VERSION,
    FLUX_SCHNELL_OPENAPI_SCHEMA,
    FLUX_SCHNELL_VERSION,
    VISION_LANGUAGE,
    VISION_LANGUAGE_OPENAPI_SCHEMA,
    VISION_LANGUAGE_VERSION,
    cog_openapi_schema,
)
from tests.fakes.replicate.timeline import tqdm_line
from tests.fakes.replicate.validation import InvalidField, validate_input
from tests.fakes.replicate.vocabulary import (
    CHAOS_FAULTS,
    DEFAULT_FAILURE_ERROR,
    DEFAULT_WEBHOOK_EVENTS,
    FAST_WEBHOOK_RETRY_DELAYS,
    INSUFFICIENT_CREDIT_DETAIL,
    NSFW_ERROR,
    REPLICATE_WEBHOOK_RETRY_DELAYS,
    TERMINAL_STATUSES,
    WEBHOOK_EVENTS,
    ChaosFault,
    RouteKind,
    Status,
    WebhookEvent,
)
from tests.fakes.replicate.webhooks import WebhookDelivery, sign_webhook

__all__ = [
    "ASPECT_RATIOS",
    "CAPTION",
    "CAPTIONER",
    "CAPTIONER_OPENAPI_SCHEMA",
    "CAPTIONER_VERSION",
    "CHAOS_FAULTS",
    "DEFAULT_FAILURE_ERROR",
    "DEFAULT_WEBHOOK_EVENTS",
    "FAST_WEBHOOK_RETRY_DELAYS",
    "FLUX_DEV",
    "FLUX_DEV_OPENAPI_SCHEMA",
    "FLUX_PRO",
    "FLUX_PRO_OPENAPI_SCHEMA",
    "FLUX_PRO_VERSION",
    "FLUX_SCHNELL",
    "FLUX_SCHNELL_DP_VERSION",
    "FLUX_SCHNELL_INPUT_SCHEMA",
    "FLUX_SCHNELL_LORA",
    "FLUX_SCHNELL_LORA_INPUT_SCHEMA",
    "FLUX_SCHNELL_LORA_OPENAPI_SCHEMA",
    "FLUX_SCHNELL_LORA_VERSION",
    "FLUX_SCHNELL_OPENAPI_SCHEMA",
    "FLUX_SCHNELL_VERSION",
    "INSUFFICIENT_CREDIT_DETAIL",
    "NSFW_ERROR",
    "REPLICATE_WEBHOOK_RETRY_DELAYS",
    "TERMINAL_STATUSES",
    "VISION_ANSWER",
    "VISION_LANGUAGE",
    "VISION_LANGUAGE_OPENAPI_SCHEMA",
    "VISION_LANGUAGE_VERSION",
    "WEBHOOK_EVENTS",
    "Chaos",
    "ChaosEvent",
    "ChaosFault",
    "FakeFile",
    "FakeModel",
    "FakePrediction",
    "FakeReplicate",
    "FakeVersion",
    "Fault",
    "InvalidField",
    "RateLimits",
    "RecordedRequest",
    "RouteKind",
    "Scenario",
    "Status",
    "WebhookDelivery",
    "WebhookEvent",
    "cog_openapi_schema",
    "llm_pieces",
    "sign_webhook",
    "tqdm_line",
    "validate_input",
]
