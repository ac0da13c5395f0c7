"""Every HTTP answer counted and timed for Prometheus (`desk_http_requests_total`,
`desk_http_request_duration_seconds`), by method, route and status code.

A pure ASGI middleware the runtime puts around every process's app, outermost, so refusals of
the edge and of admission count too. The route is the path template the router matched
(`/requests/{key}`, never the key itself), `(unmatched)` when none did, and a method outside
the usual ones is `other`: every label stays a small, fixed set whatever a client sends.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desk_platform.metrics import Metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"


class HttpMetrics:
    """Counts and times each HTTP request that goes through it (other scopes pass as they are)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # each label set's counter and histogram, found once (`labels()` takes a lock each time)
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts an answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            labels = (method, route, str(status))
            children = self._children.get(labels)
            if children is None:
                children = self._children[labels] = (
                    self.metrics.http_requests.labels(*labels),
                    self.metrics.http_duration.labels(method, route),
                )
            requests, duration = children
            requests.inc()
            duration.observe(time.perf_counter() - began)
