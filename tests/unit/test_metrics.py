"""Metrics: route labels stay low-cardinality, and a real scrape shows every name the contract promises."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import Metrics, api_route


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/v1/predictions", "POST /v1/predictions"),
        ("GET", "/v1/predictions/ufawqhfynnddngldkgtslldrkq", "GET /v1/predictions/{id}"),
        ("post", "/v1/predictions/abc/cancel", "POST /v1/predictions/{id}/cancel"),
        ("POST", "/v1/models/black-forest-labs/flux-schnell/predictions", "POST /v1/models/{owner}/{name}/predictions"),
        ("GET", "/v1/models/acme/lora", "GET /v1/models/{owner}/{name}"),
        ("GET", "/v1/models/acme/lora/versions/5c7d5dc6dd8b", "GET /v1/models/{owner}/{name}/versions/{version}"),
        ("GET", "/v1/predictions?cursor=abc", "GET /v1/predictions"),
        ("GET", "/v1/webhooks/default/secret", "GET /v1/webhooks/default/secret"),
    ],
)
def test_api_route_templates(method: str, path: str, route: str) -> None:
    assert api_route(method, path) == route


def scrape(metrics: Metrics) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Family name → samples, parsed from the exposition as Prometheus would."""
    text = metrics.exposition().decode()
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_scrape_has_every_contract_name_with_labels() -> None:
    metrics = Metrics()
    running, queued = [3], [7]
    metrics.watch_jobs(running=lambda: running[0], queued=lambda: queued[0])
    metrics.api_response("POST", "/v1/predictions", 201)
    metrics.api_response("GET", "/v1/predictions/p1", 200)
    metrics.api_response("GET", "/v1/predictions/p2", 200)
    metrics.api_response("GET", "/v1/predictions/p3", None)
    metrics.job_shown("succeeded", 4.2, 0.08)
    metrics.job_shown("failed", 1.0, None)
    families = scrape(metrics)

    jobs = {s[1]["state"]: s[2] for s in families["imagine_jobs"] if s[0] == "imagine_jobs_total"}
    assert jobs == {"succeeded": 1.0, "failed": 1.0}
    assert families["imagine_jobs_running"] == [("imagine_jobs_running", {}, 3.0)]
    assert families["imagine_jobs_queued"] == [("imagine_jobs_queued", {}, 7.0)]
    requests = {
        (s[1]["route"], s[1]["status"]): s[2]
        for s in families["imagine_api_requests"]
        if s[0] == "imagine_api_requests_total"
    }
    assert requests == {
        ("POST /v1/predictions", "201"): 1.0,
        ("GET /v1/predictions/{id}", "200"): 2.0,
        ("GET /v1/predictions/{id}", "error"): 1.0,
    }
    durations = {s[0]: s[2] for s in families["imagine_job_duration_seconds"] if not s[1].get("le")}
    assert durations["imagine_job_duration_seconds_count"] == 2
    assert durations["imagine_job_duration_seconds_sum"] == pytest.approx(5.2)
    overhead = {s[0]: s[2] for s in families["imagine_delivery_overhead_seconds"] if not s[1].get("le")}
    assert overhead["imagine_delivery_overhead_seconds_count"] == 1
    assert overhead["imagine_delivery_overhead_seconds_sum"] == pytest.approx(0.08)

    running[0], queued[0] = 0, 1  # read at scrape time, never stale
    families = scrape(metrics)
    assert families["imagine_jobs_running"][0][2] == 0
    assert families["imagine_jobs_queued"][0][2] == 1


def test_two_metrics_objects_do_not_share_state() -> None:
    first, second = Metrics(), Metrics()
    first.job_shown("canceled", 1.0, None)
    assert "imagine_jobs_total" in first.exposition().decode()
    assert 'imagine_jobs_total{state="canceled"}' not in second.exposition().decode()
