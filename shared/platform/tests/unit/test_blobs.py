"""The blob folder: content-addressed, written once, read back by sha256; a name that is not a
sha256 reads nothing (no path outside the folder can be named)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from desk_platform.blobs import FolderBlobStore, is_sha256


async def test_a_blob_is_stored_once_by_its_sha256(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    sha256 = await store.put(b"screenshot")
    assert sha256 == hashlib.sha256(b"screenshot").hexdigest()
    assert await store.put(b"screenshot") == sha256
    assert await store.get(sha256) == b"screenshot"
    assert await store.size(sha256) == len(b"screenshot")
    assert (tmp_path / sha256[:2] / sha256).exists()


@pytest.mark.parametrize("name", ["0" * 64, "../" + "0" * 61, "A" * 64, "", "0" * 65])
async def test_an_unknown_or_malformed_name_reads_nothing(tmp_path: Path, name: str) -> None:
    store = FolderBlobStore(tmp_path)
    assert await store.get(name) is None
    assert await store.size(name) is None
    assert is_sha256(name) is (name == "0" * 64)
