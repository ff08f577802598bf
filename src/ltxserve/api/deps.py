"""What routes are given: typed handles, injected by FastAPI (``Annotated[..., Depends]``).

``create_app`` builds one ``ApiDeps`` per app. A route names what it uses
(``manager: Manager``, ``keys: Keys``, ``settings: Config``, ``blobs: Blobs``,
``signing_key: SigningKey``) and mypy checks every use. The status poll is a plain
Starlette route (FastAPI's parameter machinery would double its cost), so it calls
``api_deps(request)`` itself, typed just the same.

The API process holds no state a second API process would need: jobs, keys and
results live in the database and the blob store; ``KeyResolver``'s short cache
of key lookups is the only per-process state.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request

from ltxserve.config import Settings
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.keys import KeyChecker, KeyInfo
from ltxserve.logs import key_id_var
from ltxserve.storage.base import BlobStore

T = TypeVar("T")
P = ParamSpec("P")


async def run_store(
    manager: JobManager, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Call a blocking store read inline when the store says it is cheap (local SQLite,
    memory), else in the thread pool so a networked database never blocks the loop."""
    if manager.inline_reads:
        return fn(*args, **kwargs)
    return await to_thread(fn, *args, **kwargs)


STORE_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="ltxserve-store")
"""The threads that run a request's store calls: as many as Starlette's own pool
(anyio's 40), which the other blocking work (uploads' writes, /metrics, /health/ready)
keeps to itself."""


async def to_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn`` in ``STORE_THREADS``, in a copy of the request's context (its log fields).

    Not Starlette's ``run_in_threadpool``: anyio's hop (the running library sniffed,
    a capacity limiter, a cancel scope) was ~8 % of the API's CPU per submit on
    PostgreSQL, against ~2 % for the event loop's executor (bench/README.md, "fifth
    pass"). A request cancelled meanwhile leaves the call to finish in its thread, as
    anyio's would: a store write is never cut in half."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(STORE_THREADS, call)


class KeyResolver:
    """``Authorization`` header -> the API key behind it (or AuthenticationError)."""

    def __init__(self, checker: KeyChecker, manager: JobManager) -> None:
        self.checker = checker
        self.manager = manager

    async def key_id(self, authorization: str | None) -> str:
        return (await self.info(authorization)).key_id

    async def info(self, authorization: str | None) -> KeyInfo:
        # a cached key costs a dict lookup: no hop to the thread pool for it
        info = self.checker.cached(authorization)
        if info is None:
            info = await run_store(self.manager, self.checker.info, authorization)
        key_id_var.set(info.key_id)  # in the request's task, not the pool thread: logs see it
        return info


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    manager: JobManager
    blobs: BlobStore
    keys: KeyResolver
    signing_key: bytes

    @property
    def catalog(self) -> Catalog:
        return self.manager.catalog


def api_deps(request: Request) -> ApiDeps:
    deps = request.app.state.deps
    if not isinstance(deps, ApiDeps):
        raise TypeError("the app was not built by create_app")
    return deps


def base_url(request: Request, settings: Settings) -> str:
    """Where this server is reached from: ``public_url``, else the request's own base."""
    configured = settings.public_url
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/")


# Dependencies are async: FastAPI runs a sync one in the thread pool.
async def _settings(request: Request) -> Settings:
    return api_deps(request).settings


async def _manager(request: Request) -> JobManager:
    return api_deps(request).manager


async def _blobs(request: Request) -> BlobStore:
    return api_deps(request).blobs


async def _keys(request: Request) -> KeyResolver:
    return api_deps(request).keys


async def _signing_key(request: Request) -> bytes:
    return api_deps(request).signing_key


async def _catalog(request: Request) -> Catalog:
    return api_deps(request).catalog


Config = Annotated[Settings, Depends(_settings)]
Manager = Annotated[JobManager, Depends(_manager)]
Blobs = Annotated[BlobStore, Depends(_blobs)]
Keys = Annotated[KeyResolver, Depends(_keys)]
SigningKey = Annotated[bytes, Depends(_signing_key)]
Models = Annotated[Catalog, Depends(_catalog)]
