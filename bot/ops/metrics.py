"""The bot's Prometheus metrics, in one registry owned by the core (no process-wide state).

The core feeds it from callbacks it already has (a job's end, each API
response); the gauges are read from the engine when scraped, so nothing has
to keep them in step.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Jobs take seconds to minutes; delivery should take well under a second, and the buckets say how far under.
_JOB_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, float("inf"))
_DELIVERY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, float("inf"))

# Path segments that follow these words are names or ids, not part of the route (/models/{owner}/{name}).
_PLACEHOLDERS = {
    "predictions": ("{id}",),
    "models": ("{owner}", "{name}"),
    "versions": ("{version}",),
    "deployments": ("{owner}", "{name}"),
    "trainings": ("{id}",),
}


def api_route(method: str, path: str) -> str:
    """A low-cardinality label for an API request: ``GET /v1/predictions/{id}``, never the id itself.

    ``path`` is relative to the configured base (``/v1/predictions/abc``);
    any query string is dropped.
    """
    segments = [segment for segment in path.partition("?")[0].split("/") if segment]
    route: list[str] = []
    pending: list[str] = []
    for segment in segments:
        if pending:
            route.append(pending.pop(0))
            continue
        route.append(segment)
        pending = list(_PLACEHOLDERS.get(segment, ()))
    return f"{method.upper()} /{'/'.join(route)}"


class Metrics:
    """Counters, gauges and histograms of one bot process, and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter("imagine_jobs_total", "Jobs ended, by final state.", ["state"], registry=self.registry)
        self.jobs_running = Gauge("imagine_jobs_running", "Jobs running now.", registry=self.registry)
        self.jobs_queued = Gauge("imagine_jobs_queued", "Jobs waiting for a slot.", registry=self.registry)
        self.api_requests = Counter(
            "imagine_api_requests_total",
            "Prediction API requests, by route and HTTP status ('error': no answer).",
            ["route", "status"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "imagine_job_duration_seconds",
            "From a job's acceptance to its final message shown.",
            buckets=_JOB_BUCKETS,
            registry=self.registry,
        )
        self.delivery_overhead = Histogram(
            "imagine_delivery_overhead_seconds",
            "From the bot learning that a prediction ended to the job's final message shown.",
            buckets=_DELIVERY_BUCKETS,
            registry=self.registry,
        )

    def watch_jobs(self, running: Callable[[], int], queued: Callable[[], int]) -> None:
        """Read the running and queued counts from these callables at every scrape."""
        self.jobs_running.set_function(running)
        self.jobs_queued.set_function(queued)

    def api_response(self, method: str, path: str, status: int | None) -> None:
        """Count one API request; ``status`` ``None`` when no answer came (connection failure, timeout)."""
        self.api_requests.labels(api_route(method, path), "error" if status is None else str(status)).inc()

    def job_shown(self, state: str, duration: float, delivery: float | None) -> None:
        """Count a job whose final message was shown, with its timings in seconds."""
        self.jobs.labels(state).inc()
        self.job_duration.observe(max(0.0, duration))
        if delivery is not None:
            self.delivery_overhead.observe(max(0.0, delivery))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
