"""A blob as an HTTP response, for the routes that answer with the bytes themselves.

The signed ``/files/<key>`` route (the local store's result URLs) and the synchronous
v1 operations (whose answer is the video) serve a blob from the API process. The
local store's file goes out through Starlette's FileResponse (Range requests
included); any other store's bytes are streamed from it, since the API process may be
on a machine that never had the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response, StreamingResponse

from ltxserve.storage.base import BlobStore
from ltxserve.storage.local import LocalBlobStore


async def blob_response(blobs: BlobStore, key: str, media_type: str) -> Response:
    """The blob under ``key`` (raises BlobNotFound / StorageError before any byte is sent)."""
    name = PurePosixPath(key).name
    if isinstance(blobs, LocalBlobStore):
        path = await run_in_threadpool(blobs.local_path, key)
        return FileResponse(
            path, media_type=media_type, filename=name, content_disposition_type="inline"
        )
    stream = getattr(blobs, "stream", None)
    if stream is None:
        raise TypeError(f"{type(blobs).__name__} cannot stream a blob")
    size, chunks, body = await run_in_threadpool(stream, key)
    return StreamingResponse(
        _closing(chunks, body),
        media_type=media_type,
        headers={
            "content-length": str(size),
            "content-disposition": f'inline; filename="{name}"',
        },
    )


def _closing(chunks: Iterator[bytes], body: Any) -> Iterator[bytes]:
    """Iterated in a thread by Starlette; the connection goes back to the pool at the end,
    or when the client leaves early."""
    try:
        yield from chunks
    finally:
        body.close()
