"""The files a form sends (a new request's, a comment's): read within the deployment's bounds
(how many, each one's size, all together), named safely, then kept in the blob store by
content hash and described as an event names them (`desk_contracts.tickets.Attachment`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from starlette.datastructures import UploadFile

from desk_platform.blobs import BlobStore
from portal.domain import requests_new as n

Problem = Literal["too_many_files", "file_too_large", "files_too_large"]
File = tuple[str, str, bytes]  # safe name, content type, bytes


async def read_files(
    parts: Iterable[object], limits: n.UploadLimits
) -> tuple[list[File], Problem | None]:
    """The chosen files among `parts` (name, content type, bytes), or why they are refused."""
    chosen: Sequence[UploadFile] = [p for p in parts if isinstance(p, UploadFile) and p.filename]
    if len(chosen) > limits.files:
        return [], "too_many_files"
    files, total = [], 0
    for part in chosen:
        data = await part.read(limits.per_file + 1)
        if len(data) > limits.per_file:
            return [], "file_too_large"
        total += len(data)
        if total > limits.total:
            return [], "files_too_large"
        files.append((n.safe_filename(part.filename), n.safe_content_type(part.content_type), data))
    return files, None


async def stored(files: Iterable[File], blobs: BlobStore) -> list[dict[str, Any]]:
    """`files` kept in the blob store, each described as an event names it."""
    return [
        {"filename": name, "content_type": kind, "size": len(data), "sha256": await blobs.put(data)}
        for name, kind, data in files
    ]  # fmt: skip
