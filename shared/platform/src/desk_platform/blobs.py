"""Where attachments go: a content-addressed blob store (sha256 -> bytes), behind a port, and
its one adapter, a local folder `<root>/<sha[:2]>/<sha>` written atomically once.

Intake (mail attachments; checking a request's attachments exist) and the portal (uploads and
downloads) share it: both are given the same `BLOB_DIR` (`desk_platform.settings`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(text: str) -> bool:
    """Whether `text` is a sha256 as the store names blobs (64 lower-case hex digits)."""
    return SHA256.fullmatch(text) is not None


class BlobStore(Protocol):
    """A content-addressed store of attachments."""

    async def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256, the key to read it back."""
        ...

    async def get(self, sha256: str) -> bytes | None:
        """The bytes stored under `sha256` (None: none)."""
        ...

    async def size(self, sha256: str) -> int | None:
        """The size in bytes of the blob `sha256` (None: none stored)."""
        ...


class FolderBlobStore:
    """The blob store as a local folder (see module)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    async def put(self, data: bytes) -> str:
        """Store `data` once and return its sha256."""
        sha256 = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, self._path(sha256), data)
        return sha256

    async def get(self, sha256: str) -> bytes | None:
        """The bytes of `sha256` (None: not stored, or not a sha256)."""
        if not is_sha256(sha256):
            return None
        path = self._path(sha256)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)

    async def size(self, sha256: str) -> int | None:
        """The size of `sha256`'s blob (None: not stored, or not a sha256)."""
        if not is_sha256(sha256):
            return None
        path = self._path(sha256)
        return await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else None)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
