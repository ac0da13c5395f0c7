"""Reachability probes used by deploy/local/infra.sh (all output on stderr, exit code = verdict).

    python deploy/local/probe.py pg    URL                [--timeout S]
    python deploy/local/probe.py kafka BOOTSTRAP_SERVERS  [--timeout S]

Exit 0 when the server answers a real request (a `SELECT 1`, a metadata request), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time


def _say(msg: str) -> None:
    print(f"[probe] {msg}", file=sys.stderr, flush=True)


async def probe_pg(url: str, timeout: float) -> bool:
    import asyncpg

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=min(5.0, max(1.0, timeout)))
            try:
                version = await conn.fetchval("SHOW server_version")
            finally:
                await conn.close()
            _say(f"PostgreSQL {version} answers")
            return True
        except Exception as exc:  # any failure means "not reachable yet"
            last = exc
        if time.monotonic() >= deadline:
            _say(f"PostgreSQL not reachable: {type(last).__name__}: {last}")
            return False
        await asyncio.sleep(0.5)


async def probe_kafka(bootstrap: str, timeout: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            _say(
                f"Kafka answers: cluster {cluster.get('cluster_id')}, "
                f"{len(cluster.get('brokers', []))} broker(s)"
            )
            return True
        except Exception as exc:
            last = exc
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        if time.monotonic() >= deadline:
            _say(f"Kafka not reachable at {bootstrap}: {type(last).__name__}: {last}")
            return False
        await asyncio.sleep(0.5)


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka logs every failed attempt otherwise
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["pg", "kafka"])
    parser.add_argument("target")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    probe = probe_pg if args.kind == "pg" else probe_kafka
    ok = asyncio.run(probe(args.target, args.timeout))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
