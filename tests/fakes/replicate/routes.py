"""The API routes: create (by model or by version, with ``Prefer: wait``), get, list, cancel, the model
and version routes and the webhook secret.
"""

from __future__ import annotations

import base64
import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.replicate.http import _RECORD
from tests.fakes.replicate.validation import _webhook_errors, validate_input
from tests.fakes.replicate.vocabulary import _INVALID_VERSION, _NOT_FOUND, _json_response, _problem

if TYPE_CHECKING:
    from tests.fakes.replicate.models import FakeModel, FakeVersion
    from tests.fakes.replicate.vocabulary import JsonDict


def _parse_prefer(value: str | None) -> tuple[float, str] | None:
    """Return ``(seconds, Preference-Applied value)`` for ``Prefer: wait`` / ``wait=N``, else ``None``."""
    if not value:
        return None
    for token in value.split(","):
        token = token.strip().lower()
        if token == "wait":
            return 60.0, "wait"
        if token.startswith("wait="):
            try:
                seconds = int(token[5:])
            except ValueError:
                return None
            if seconds <= 0:
                return None
            seconds = min(seconds, 60)
            return float(seconds), f"wait={seconds}"
    return None


class RoutesMixin:
    """Part of :class:`FakeReplicate`: the handlers of the API routes."""

    async def _handle_create_model(self, request: web.Request) -> web.StreamResponse:
        model = self.models.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if model is None:
            return _problem(_NOT_FOUND, 404)
        if not model.official:
            # [I] not an official model: the models endpoint needs a version; answer like a bad version.
            return _problem(_INVALID_VERSION, 422)
        body = self._body(request)
        if isinstance(body, web.Response):
            return body
        return await self._create(request, model, model.latest_version, model.prediction_version, body)

    async def _handle_create_version(self, request: web.Request) -> web.StreamResponse:
        body = self._body(request)
        if isinstance(body, web.Response):
            return body
        resolved = self._resolve_version(body.get("version"))
        if resolved is None:
            return _problem(_INVALID_VERSION, 422)
        model, version, version_field = resolved
        return await self._create(request, model, version, version_field, body)

    def _resolve_version(self, ref: Any) -> tuple[FakeModel, FakeVersion, str] | None:
        if not isinstance(ref, str) or not ref:
            return None
        name, sep, version_id = ref.partition(":")
        if sep:
            model = self.models.get(name)
            version = model.version(version_id) if model else None
            return (model, version, version_id) if model and version else None
        if "/" in ref:
            model = self.models.get(ref)
            if model is None or not model.official:
                return None
            return model, model.latest_version, model.prediction_version
        for model in self.models.values():
            version = model.version(ref)
            if version is not None:
                return model, version, ref
        return None

    async def _create(
        self, request: web.Request, model: FakeModel, version: FakeVersion, version_field: str, body: JsonDict
    ) -> web.StreamResponse:
        errors = _webhook_errors(body) + validate_input(version.openapi_schema, body.get("input", {}))
        if errors:
            problem = {
                "detail": "".join(e.detail_line() for e in errors),
                "status": 422,
                "title": "Input validation failed",
                "invalid_fields": [e.to_json() for e in errors],
            }
            return _problem(problem, 422)
        pred = self._create_prediction(request, model, version, version_field, body)
        request[_RECORD].prediction_id = pred.id
        headers = {"Location": pred.urls["get"]}
        wait = _parse_prefer(request.headers.get("Prefer"))
        if wait is not None:
            seconds, applied = wait
            headers["Preference-Applied"] = applied
            if self.max_sync_wait is not None:
                seconds = min(seconds, max(0.0, self.max_sync_wait))
            with contextlib.suppress(TimeoutError):
                await self.wait_until(
                    lambda: pred.terminal or pred.output is not None or self._closing,
                    timeout=seconds,
                    what="sync prediction",
                )
        return _json_response(pred.to_json(), 201, headers)

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        pred = self._owned(request, self.predictions.get(request.match_info["id"]))
        if pred is None:
            return _problem(_NOT_FOUND, 404)
        return _json_response(pred.to_json())

    async def _handle_list(self, request: web.Request) -> web.StreamResponse:
        """Newest first, ``created_after``/``created_before`` filters, pages with a ``cursor`` in ``next``."""
        if not self.serve_list:
            return _problem(_NOT_FOUND, 404)
        bounds: dict[str, datetime] = {}
        for name in ("created_after", "created_before"):
            raw = request.query.get(name)
            if raw is None:
                continue
            try:
                bounds[name] = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return _problem({"title": "Invalid query", "detail": f"{name} is not a date-time", "status": 400}, 400)
        chosen = [
            pred
            for pred in reversed(self.predictions.values())
            if self._owned(request, pred) is not None
            and ("created_after" not in bounds or pred.created_at >= bounds["created_after"])
            and ("created_before" not in bounds or pred.created_at < bounds["created_before"])
        ]
        try:
            offset = int(base64.urlsafe_b64decode(request.query.get("cursor", "") + "==").decode() or 0)
        except ValueError:
            return _problem({"title": "Invalid cursor", "detail": "The cursor is not valid", "status": 400}, 400)
        page = chosen[offset : offset + self.list_page_size]
        following = None
        if offset + self.list_page_size < len(chosen):
            cursor = base64.urlsafe_b64encode(str(offset + self.list_page_size).encode()).decode().rstrip("=")
            query = {**{k: v for k, v in request.query.items() if k != "cursor"}, "cursor": cursor}
            following = f"{self.urls_base}/v1/predictions?{urlencode(query)}"
        results = [pred.to_json() for pred in page]
        for item in results:
            item["source"] = "api"
        return _json_response({"next": following, "previous": None, "results": results})

    async def _handle_cancel(self, request: web.Request) -> web.StreamResponse:
        pred = self._owned(request, self.predictions.get(request.match_info["id"]))
        if pred is None:
            return _problem(_NOT_FOUND, 404)
        self._cancel(pred)
        return _json_response(pred.to_json())

    def _served_model(self, request: web.Request) -> FakeModel | None:
        model = self.models.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        return model if model is not None and model.serve_schema else None

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        return _json_response(model.to_json()) if model else _problem(_NOT_FOUND, 404)

    async def _handle_versions(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        if model is None:
            return _problem(_NOT_FOUND, 404)
        results = [v.to_json() for v in reversed(model.versions)]
        return _json_response({"next": None, "previous": None, "results": results})

    async def _handle_version(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        version = model.version(request.match_info["version"]) if model else None
        return _json_response(version.to_json()) if version else _problem(_NOT_FOUND, 404)

    async def _handle_webhook_secret(self, request: web.Request) -> web.StreamResponse:
        if not self.serve_webhook_secret:
            return _problem(_NOT_FOUND, 404)
        account = self._account_of(request)
        return _json_response({"key": account.webhook_secret if account is not None else self.webhook_secret})
