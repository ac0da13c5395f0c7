"""What the page benchmarks share: signing in to the portal, timing a call many times, and the
table of quantiles beside the same-run baselines, as ratios."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
Call = Callable[[], Awaitable[httpx.Response]]


async def signed_in(portal: httpx.AsyncClient, email: str, password: str) -> None:
    """Sign `portal`'s client in as `email` (its cookies keep the session)."""
    form = await portal.get("/sign-in")
    csrf = CSRF.search(form.text)
    assert csrf, "no CSRF token on the sign-in page"
    answer = await portal.post(
        "/sign-in", data={"csrf": csrf.group(1), "email": email, "password": password}
    )
    assert answer.status_code in (200, 303), answer.status_code


async def timed(call: Call, rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls (each must answer 200), after 5 untimed ones."""
    for _ in range(5):
        await call()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        answer = await call()
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (answer.request.url, answer.status_code)
    return times


def quantile(times: list[float], q: float) -> float:
    """The `q` quantile of `times` (inclusive method, by hundredths)."""
    return statistics.quantiles(times, n=100, method="inclusive")[int(q * 100) - 1]


async def time_pages(
    portal: httpx.AsyncClient, pages: Mapping[str, str], baselines: Mapping[str, Call], rounds: int
) -> None:
    """Time each baseline then each page `rounds` times and print p50 / p95 / p99 / max in
    milliseconds, with each page's p95 over each baseline's p95."""
    results: dict[str, list[float]] = {}
    for name, call in baselines.items():
        results[name] = await timed(call, rounds)
    for name, path in pages.items():
        results[name] = await timed(lambda path=path: portal.get(path), rounds)  # type: ignore[misc]
    base = {name: quantile(results[name], 0.95) for name in baselines}
    width = max(len(name) for name in results) + 2
    print(f"\n{'page':<{width}}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}   p95 / baseline p95")
    for name, times in results.items():
        p95 = quantile(times, 0.95)
        ratios = (
            ""
            if name in baselines
            else "   " + ", ".join(f"{p95 / b:.1f}x {label}" for label, b in base.items())
        )
        print(
            f"{name:<{width}}{statistics.median(times):>8.1f}{p95:>8.1f}"
            f"{quantile(times, 0.99):>8.1f}{max(times):>8.1f}{ratios}"
        )
