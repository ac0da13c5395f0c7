"""Benchmark (not a test): intake's `POST /requests` alone, requests/s and CPU per request.

    uv run python bench/intake_http.py [--concurrency 1,8,32] [--seconds 10]
                                       [--python OTHER/.venv/bin/python] [--profile FILE]
                                       [--http-metrics on|off] [--tracing export|on|off]

A child process serves intake's HTTP app as the service does (uvicorn, access log off, the edge,
admission when the checkout has it, each answer counted and timed for /metrics unless
`--http-metrics off`, each request traced as the runtime traces it unless `--tracing off`
(`export`, the default: spans sent over OTLP/HTTP to a receiver in the bench's process, as to a
collector; `on`: made, not exported), wired as intake's bootstrap does but for its backlog limit,
out of the way as no relay drains the store; a real pool on a fresh schema of the PostgreSQL of
DATABASE_URL, or `.state/infra.env`'s; flood limits out of the way; no relay, no Kafka: the HTTP
path and its transaction only). The bench then POSTs `saas-desk` requests (each with its own
`Idempotency-Key`, as `bench/load.py` sends them) in a closed loop from `--concurrency` workers
on keep-alive connections, for `--seconds` per level, and prints requests/s, answer time p50/p99
and CPU milliseconds per request of the intake process and of PostgreSQL (postmaster, its reaped
and live backends), read from `/proc`; the load generator's own CPU is shown apart.

`--python` serves the app from another checkout's environment (e.g. `main`'s, for a before /
after), the rest of the bench staying this one. `--profile FILE` records the intake process
with py-spy (`uvx py-spy`, from PyPI) during the last level, as collapsed stacks, and prints
the share of samples under a few frames of interest (inclusive: a frame's callees count for
it) and the self time of the middlewares (the innermost frame outside the standard library).

PostgreSQL is shared with whatever else runs on the machine: run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support"), str(ROOT / "deploy/local"), str(ROOT / "bench")]

WARM_UP_SECONDS = 2.0
# frames whose share of the intake process's samples the profile summary prints
OF_INTEREST = {
    "the HTTP/1.1 parser (h11)": "(h11/",
    "the edge (EdgeGuard)": "desk_platform/edge.py",
    "admission (shedding)": "desk_platform/admission.py",
    "the directory gate": "directory_feed.py",
    "Starlette's middlewares": "starlette/middleware",
    "FastAPI's request handling (routing, dependencies)": "fastapi/routing.py",
    "pydantic validation": "pydantic",
    "identity token check": "desk_platform/identity.py",
    "the submission (application.submit)": "intake/application/submit.py",
    "asyncpg": "asyncpg",
    "structlog": "structlog",
    "JSON encoding of the answer": "fastapi/encoders.py",
}


HTTP_METRICS = "BENCH_HTTP_METRICS"  # tells the child whether to count its answers
TRACING = "BENCH_TRACING"  # tells the child whether to trace (export|on|off)


# ---------------------------------------------------------------------------- the server


def serve(port: int, schema: str, jwks_file: str, database_url: str) -> None:
    """The child: intake's app on `port`, on a fresh schema, until killed."""
    from datetime import UTC, datetime
    from importlib import resources

    import uvicorn

    from desk_eventstore.db import open_store
    from desk_eventstore.migrate import migrations_in
    from desk_platform.identity import Verifier
    from desk_policies.loader import load_policies
    from intake.adapters.http import create_app
    from intake.domain.flood import RequestLimits

    tracing = os.environ.get(TRACING, "off")
    if tracing != "off":
        try:  # a checkout that traces: installed as the runtime does
            from desk_platform.settings import Settings
            from desk_platform.tracing import configure_tracing, instrument_app
        except ImportError:
            tracing = "off"
        else:
            endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
            configure_tracing(
                "intake",
                Settings(
                    database_url=database_url,
                    kafka_bootstrap_servers="unused",
                    otel_exporter_otlp_endpoint=endpoint if tracing == "export" else "",
                ),
            )

    async def main() -> None:
        pool = await open_store(
            database_url, schema, migrations_in("intake", resources.files("intake") / "migrations")
        )
        many = 100_000_000
        wiring: dict[str, object] = {}
        background: list[asyncio.Task[None]] = []
        try:  # a checkout with admission: wired as intake's bootstrap does
            from desk_platform.admission import Admission, AdmissionLimits, outbox_backlog
        except ImportError:
            pass
        else:
            # no relay drains this store: its backlog limit out of the way, the rest the default
            limits = AdmissionLimits(max_backlog=many)
            admission = Admission(outbox_backlog(pool, "intake-relay"), limits)
            wiring["admission"] = admission
            background.append(asyncio.create_task(admission.watch(asyncio.Event())))
        app = create_app(
            pool,
            load_policies(),
            lambda: datetime.now(UTC),
            "http://workflow",
            verifier=Verifier(jwks_file, "intake"),
            limits=RequestLimits(many, many, many),
            **wiring,  # type: ignore[arg-type]
        )
        if os.environ.get(HTTP_METRICS) != "off":
            try:  # a checkout that counts HTTP answers: installed as the runtime does
                from desk_platform.http_metrics import HttpMetrics
                from desk_platform.metrics import Metrics
            except ImportError:
                pass
            else:
                app.add_middleware(HttpMetrics, metrics=Metrics())
        if tracing != "off":
            instrument_app(app)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
        await uvicorn.Server(config).serve()

    try:  # the event loop the services run on (uvloop), in a checkout that has it
        from desk_platform.runtime import run_loop
    except ImportError:
        asyncio.run(main())
    else:
        run_loop(main())


# ---------------------------------------------------------------------------- the load


async def level(
    client: object, workers: int, seconds: float, first: int
) -> list[tuple[int, float]]:
    """(status, answer seconds) of every POST `workers` closed-loop workers made."""
    from load import RawClient, request_body

    assert isinstance(client, RawClient)
    done: list[tuple[int, float]] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(first, first + 10_000_000))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            began = time.perf_counter()
            try:
                status, _ = await client.post("/requests", request_body(i), f"bench-{first}-{i}")
            except (OSError, asyncio.IncompleteReadError) as error:
                status = -1
                print(f"  no answer: {type(error).__name__}", flush=True)
            done.append((status, time.perf_counter() - began))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


async def _postmaster(url: str) -> int:
    """The PostgreSQL server's main process: the parent of a backend of ours."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# the frames of the middlewares (the ASGI stack around the routes)
MIDDLEWARES = (
    "desk_platform/edge.py",
    "desk_platform/directory_feed.py",
    "desk_platform/admission.py",
    "fastapi/_body_limit.py",
    "fastapi/telemetry/",
    "fastapi/middleware/",
    "fastapi/applications.py",
    "starlette/middleware/",
    "starlette/_exception_handler.py",
    "starlette/applications.py",
    "uvicorn/middleware/",
)
# the standard library: its time goes to the frame that called it
STDLIB = ("asyncio/", "json/", "selectors", "concurrent", "contextlib", "typing", "uuid", "re/",
          "base64", "enum", "functools", "abc", "<frozen", "<string>", "copy", "inspect",
          "dataclasses", "hashlib", "email/", "collections", "datetime", "encodings")  # fmt: skip
IDLE = ("_worker (concurrent", "EpollSelector.select")  # a thread or the loop waiting


def summarise_profile(path: Path) -> None:
    """The share of the busy samples under each frame of `OF_INTEREST` (inclusive), and the
    middlewares' self time (collapsed stacks; waiting samples left out)."""
    total = 0
    under: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or frames[-1].startswith(IDLE):
            continue
        total += int(count)
        for label, frame in OF_INTEREST.items():
            if frame in stack:
                under[label] += int(count)
        for frame in reversed(frames):
            where = frame.rpartition(" (")[2].rpartition(":")[0]
            if where and not where.startswith(STDLIB):
                if where.startswith(MIDDLEWARES):
                    own[where] += int(count)
                break
    print(f"\nprofile of the intake process ({total} busy samples), share under:")
    for label, count in under.most_common():
        print(f"  {label:<52} {100 * count / max(total, 1):5.1f} %")
    print(f"self time of the middlewares: {100 * sum(own.values()) / max(total, 1):.1f} %")
    for where, count in own.most_common():
        print(f"  {where:<52} {100 * count / max(total, 1):5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--http-metrics", choices=("on", "off"), default="on", help="count and time each answer"
    )
    parser.add_argument(
        "--tracing",
        choices=("export", "on", "off"),
        default="export",
        help="trace each request (export: spans sent over OTLP to a receiver of the bench's)",
    )
    parser.add_argument("--serve", nargs=4, metavar=("PORT", "SCHEMA", "JWKS", "URL"))
    args = parser.parse_args()
    if args.serve:
        port, schema, jwks_file, url = args.serve
        serve(int(port), schema, jwks_file, url)
        return

    import asyncpg
    from identity_support import bearer
    from load import RawClient, _children, _cpu_of
    from otlp_receiver import otlp_receiver
    from system import free_port

    from desk_platform.identity import Signer, jwks, new_signing_key

    url = (
        os.environ.get("DATABASE_URL")
        or dict(
            line.removeprefix("export ").split("=", 1)
            for line in (ROOT / ".state/infra.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )["DATABASE_URL"]
    )
    key = new_signing_key("bench-intake")
    folder = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    jwks_file = folder / "jwks.json"
    jwks_file.write_text(json.dumps(jwks([key])), encoding="utf-8")
    headers = bearer(
        "anne@acme.example", audience="intake", signer=Signer([key]), organisation="acme"
    )
    port, schema = free_port(), f"bench_intake_{uuid.uuid4().hex[:6]}"
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores; intake from "
          f"{args.python}", flush=True)  # fmt: skip
    receiver = otlp_receiver(folder / "spans.jsonl")
    spans = receiver.__enter__()
    child = subprocess.Popen(
        [args.python, __file__, "--serve", str(port), schema, str(jwks_file), url],
        stdout=subprocess.DEVNULL,
        env=os.environ
        | {HTTP_METRICS: args.http_metrics, TRACING: args.tracing}
        | {"OTEL_EXPORTER_OTLP_ENDPOINT": spans.url, "OTEL_SDK_DISABLED": "false"},
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        postmaster = asyncio.run(_postmaster(url))

        def cpu() -> dict[str, float]:
            seconds = {"intake": _cpu_of(child.pid), "load generator": _cpu_of(os.getpid())}
            seconds["postgresql"] = _cpu_of(postmaster, children=True) + sum(
                _cpu_of(pid) for pid in _children(postmaster)
            )
            return seconds

        async def run() -> None:
            client = RawClient(f"http://127.0.0.1:{port}", headers)
            try:
                await level(client, 8, WARM_UP_SECONDS, 0)
                first = 1
                for n, workers in enumerate(levels):
                    spy = None
                    if args.profile is not None and n == len(levels) - 1:
                        spy = subprocess.Popen(
                            ["uvx", "py-spy", "record", "--pid", str(child.pid), "--format",
                             "raw", "--output", str(args.profile), "--rate", "200",
                             "--duration", str(int(args.seconds))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                        await asyncio.sleep(1.0)  # py-spy attaching
                    before, began = cpu(), time.perf_counter()
                    done = await level(client, workers, args.seconds, first * 10_000_000)
                    elapsed = time.perf_counter() - began
                    after = cpu()
                    first += 1
                    ok = [s for s, _ in done if 200 <= s < 300]
                    statuses = dict(Counter(s for s, _ in done))
                    times = [t for _, t in done]
                    print(
                        f"\n## {workers} workers, {elapsed:.1f} s: {len(ok) / elapsed:.1f} "
                        f"requests/s accepted ({statuses}); answer p50 "
                        f"{1000 * pct(times, 0.5):.1f} ms, p99 {1000 * pct(times, 0.99):.1f} ms"
                    )
                    for name in after:
                        spent = after[name] - before.get(name, 0.0)
                        print(f"  CPU {name:<15} {1000 * spent / max(len(done), 1):6.2f} ms "
                              f"per request ({spent / elapsed:.2f} cores)")  # fmt: skip
                    if spy is not None:
                        spy.wait(timeout=args.seconds + 60)
            finally:
                await client.close()

        asyncio.run(run())
    finally:
        child.terminate()
        child.wait(timeout=20)

        async def drop() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())
        receiver.__exit__(None, None, None)
    print(f"load average after: {os.getloadavg()}; spans received: {len(spans.spans())}")
    if args.profile is not None and args.profile.exists():
        summarise_profile(args.profile)


if __name__ == "__main__":
    main()
