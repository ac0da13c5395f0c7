"""Test helper: a TCP relay in front of a real server (PostgreSQL) that a test can cut
(connections aborted, new ones refused) and restore on the same port, so the server is out of
reach for one client only while everyone else keeps using it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """Listens on a free loopback port and pipes every connection to the real server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = _free_port()
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()

    @classmethod
    async def to(cls, database_url: str) -> TcpProxy:
        """A proxy to the server of `database_url`, listening already."""
        parts = urlsplit(database_url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.restore()
        return proxy

    def url(self, database_url: str) -> str:
        """`database_url` with the proxy's address instead of the server's."""
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.listen_port}" if user else f"127.0.0.1:{self.listen_port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.listen_port)

    async def cut(self) -> None:
        """Abort every connection and refuse new ones: the server's outage, as the client sees
        it."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.open):
            writer.transport.abort()
        self.open.clear()

    close = cut

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self.open |= {writer, upstream_writer}

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()
            self.open.discard(sink)

        await asyncio.gather(copy(reader, upstream_writer), copy(upstream_reader, writer))
