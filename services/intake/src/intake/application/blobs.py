"""Where attachments go: a content-addressed blob store behind a port (sha256 -> bytes)."""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256, the key to read it back."""
        ...

    async def get(self, sha256: str) -> bytes | None: ...
