"""Settings: defaults embedded, overridable by ``LTXSERVE_*`` environment variables.

One Settings object describes one deployment; API processes and workers that share
a database and storage must share the settings that matter across processes
(database_url, data_dir or storage, secret).

A setting that cannot work raises ``ConfigError``; ``serve``/``worker`` print its one
``line()`` and exit with ``EX_CONFIG`` instead of retrying:

    ConfigError                 this module; cli.py turns pydantic's errors into it
    +-- EngineUnavailable       ltxserve.engines: unknown engine, module missing
    +-- RegistryError           ltxserve.engines.ltx.registry: unusable registry or
                                weights (also a ValueError)

It is not an ``LtxError``: no client ever sees it (see ``ltxserve.errors``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EX_CONFIG = 78
"""Exit status of ``serve`` and ``worker`` on a configuration error (sysexits.h)."""


class ConfigError(Exception):
    """A setting that cannot work: the process stops at once instead of retrying.

    ``setting`` names what to change and ``doc`` where to read about it, so the one
    line a user sees (``line()``) is enough to fix it.
    """

    setting = "LTXSERVE_ENGINE"
    doc = "README.md#configuration"

    def __init__(self, message: str, *, setting: str | None = None, doc: str | None = None) -> None:
        super().__init__(message)
        if setting is not None:
            self.setting = setting
        if doc is not None:
            self.doc = doc

    def line(self) -> str:
        text = " ".join(str(self).split())  # one line, whatever the message held
        return f"configuration error: {text} [setting: {self.setting}; see {self.doc}]"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ltxserve"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTXSERVE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: sqlite file in data_dir
    public_url: str | None = None  # absolute base for result URLs; default: request's own
    # Longest wait for the job store (pool checkout, SQLite lock) before a 503 with
    # Retry-After (README, configuration); never the old 30 s.
    db_timeout_seconds: float = 5.0
    # Who upgrades the schema (docs/deployment.md#migrations): "auto", every process as it
    # starts (one machine); "never", only `ltxserve migrate`, once per deploy, and a
    # process finding the database behind its code refuses to start (exit 78).
    migrate: Literal["auto", "never"] = "auto"
    secret: str | None = None  # HMAC key for signed URLs; default: data_dir/secret.key
    # Blob store (docs/architecture.md, "Scale-out"): unset, a directory in data_dir;
    # s3://bucket/prefix, an S3-compatible bucket. Endpoint and region below, else
    # AWS_ENDPOINT_URL(_S3) / AWS_REGION and boto3's credential chain.
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # How long a worker retries a blob read or write that failed (S3 down) before it
    # fails the job with api_error (never `completed` without its result).
    storage_retry_seconds: float = 60.0
    models_file: Path | None = None  # model x resolution x fps x duration table

    retention_seconds: float = 24 * 3600
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    progress_seconds: float = 0.5  # a running job's progress reaches the store this often
    max_attempts: int = 3
    stop_grace_seconds: float = 30.0  # a job the worker lost: how long the runner gets to drop it
    poll_interval: float = 0.5  # how often an idle worker looks for work
    sweep_interval: float = 30.0
    # Limits (docs/limits.md; jobs/lifecycle/limits.py), checked in the submit's own
    # transaction so they hold across API processes. A key's own value, set with
    # `ltxserve keys set-limits`, overrides the first three.
    max_unfinished_per_key: int = Field(default=2, ge=0)  # jobs pending or processing; 0: none
    rate_limit_per_second: float = Field(default=0.0, ge=0)  # submits/s per key (bucket); 0: off
    rate_limit_burst: int = Field(default=10, ge=1)  # the bucket's size
    max_pending_jobs: int = Field(default=0, ge=0)  # server-wide queue depth (503); 0: none
    queue_retry_after_seconds: int = Field(default=5, ge=1)  # Retry-After of that 503
    # Content policy on prompts (docs/limits.md#content-policy): "terms" (the term list
    # below; none given: nothing filtered), "none", an entry point name of the group
    # ltxserve.content_policy, or module:attribute.
    content_policy: str = "terms"
    content_terms: Annotated[list[str], NoDecode] = Field(default_factory=list)  # comma list
    content_terms_file: Path | None = None  # one term per line, "#" comments
    # Listing and idempotency (docs/api.md, "Listing jobs" and "Idempotency"): how long an
    # Idempotency-Key names the job it made; expired keys go with the sweeper.
    idempotency_seconds: float = Field(default=24 * 3600.0, gt=0)
    # Credits (docs/credits.md): off by default. On, each submit holds its
    # estimated cost against the key's balance (402 insufficient_funds_error when short),
    # charged when the job completes, released when it fails or is cancelled.
    credits: bool = False
    credits_prices_file: Path | None = None  # default: the bundled data/prices.json

    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout_seconds: float = 15.0  # a request's headers must arrive within this (408)
    key_cache_seconds: float = 2.0
    # Browser origins allowed to call the API (CORS; docs/api.md): a comma list such as
    # "https://app.example.com,http://localhost:3000", or "*". None by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    engine: str = "auto"  # auto | minimal | preview | ltx
    ltx_models_file: Path | None = None  # model engine registry (docs/model-engine.md)
    preview_threads: int = Field(default=2, ge=1)  # x264 slice threads (docs/preview-engine.md)
    workers: int = 1  # worker processes `serve` supervises
    log_level: str | None = None  # default: warning for `serve` and its workers, info for `worker`
    log_format: str = "text"  # text | json: one JSON object per line (docs/operations.md)
    # Operations (docs/operations.md)
    shutdown_grace_seconds: int = 30  # SIGTERM: how long in-flight requests get to finish
    metrics_cache_seconds: float = 5.0  # /metrics: in-flight job counts at most this often
    worker_metrics_port: int | None = None  # `ltxserve worker`: serve its own /metrics on this port
    # `ltxserve worker --concurrency`: jobs one worker process runs at once, each in a
    # slot with a runner (and engine) of its own (docs/deployment.md, "Worker concurrency")
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    # Live events (GET /v2/{endpoint}/{id}/events; docs/api.md "Live events"): how often an
    # API process checks its streamed jobs (SQLite polls at this pace; PostgreSQL is told
    # by LISTEN/NOTIFY and only paces its listener with it), and how often an idle stream
    # gets a keep-alive comment so proxies do not cut it.
    events_poll_seconds: float = Field(default=0.2, gt=0)
    events_keepalive_seconds: float = Field(default=15.0, gt=0)

    # Inputs and uploads (docs/inputs.md)
    upload_max_bytes: int = 100 * 1024 * 1024  # one PUT to an upload URL
    upload_url_seconds: float = 3600.0  # how long an upload URL accepts its PUT
    upload_retention_seconds: float = 24 * 3600.0  # how long a storage_uri stays usable
    allow_http: bool = False  # accept http:// input URLs (the SSRF guard still applies)
    # host or host:port entries exempt from the SSRF address checks (JSON list or comma list)
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_ca_file: Path | None = None  # extra CA bundle (PEM) trusted for HTTPS inputs
    sync_timeout_seconds: float = 300.0  # v1 synchronous endpoints: 504 after this

    # Webhooks (docs/webhooks.md): the delivery loop runs in each API process; a target
    # passes the same SSRF guard as inputs (allow_http, fetch_allow_hosts above)
    webhook_concurrency: int = 8  # deliveries sent at once per API process; 0: no loop here
    webhook_poll_interval: float = 1.0  # how often an idle loop looks for due deliveries
    webhook_timeout_seconds: float = 10.0  # one attempt: connect, send, answer
    webhook_retry_base_seconds: float = 5.0  # first retry after ~this, doubling (with jitter)
    webhook_retry_max_seconds: float = 3600.0  # longest wait between two attempts
    webhook_retry_window_seconds: float = 24 * 3600.0  # from the job's end; then given up

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("content_terms", mode="before")
    @classmethod
    def _split_terms(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [t.strip() for t in text.split(",") if t.strip()]
        return value

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    return json.loads(text)
                except ValueError:  # "[::1]:8443" is an entry, not JSON
                    pass
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ltxserve.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def work_dir(self) -> Path:
        """A worker's local cache: one directory per running job (inputs, outputs)."""
        return self.data_dir / "work"

    def check_shared(self) -> None:
        """Refuse a deployment that cannot work across machines: ConfigError.

        With PostgreSQL the processes are meant to run on several machines; without
        ``LTXSERVE_SECRET`` each data dir would make a signing key of its own, and a
        URL signed by one API process would be refused by the next. The storage URL
        must have its form (``s3://bucket/prefix``), and with credits on the price
        table must load (docs/credits.md), before anything starts.
        """
        if self.db_url.startswith("postgresql") and not self.secret:
            raise ConfigError(
                "LTXSERVE_DATABASE_URL is PostgreSQL (several machines) but LTXSERVE_SECRET "
                "is not set: every data dir would sign URLs with a key of its own; set the "
                "same LTXSERVE_SECRET for every API process and worker",
                setting="LTXSERVE_SECRET",
                doc="docs/architecture.md#scale-out",
            )
        if self.credits:  # a price table that cannot be read stops every process at start
            from ltxserve.jobs.lifecycle.pricing import PriceTable

            PriceTable.load(self.credits_prices_file)
        if self.storage_url:
            from ltxserve.storage.base import StorageError
            from ltxserve.storage.s3 import parse_storage_url

            try:
                parse_storage_url(self.storage_url)
            except StorageError as exc:
                raise ConfigError(
                    str(exc), setting="LTXSERVE_STORAGE_URL", doc="README.md#configuration"
                ) from exc

    def ensure_dirs(self) -> None:
        """The data dir; the blob directory is made by the local store when it is used."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def signing_key(self) -> bytes:
        """The HMAC key, created once per data dir so every process agrees on it."""
        if self.secret:
            return self.secret.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.ensure_dirs()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # atomic create-if-absent: racing processes agree
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()
