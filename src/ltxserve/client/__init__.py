"""Python SDK for the LTX Video API: the hosted service or an ltxserve server.

    from ltxserve.client import Client

    with Client() as client:  # LTX_BASE_URL (default https://api.ltx.video), LTXV_API_KEY
        gen = client.text_to_video.generate(
            prompt="a red fox in the snow", model="ltx-2-3-fast",
            duration=2, resolution="1280x720", output="fox.mp4",
        )

``Client`` blocks and ``AsyncClient`` awaits. Both offer the same methods, and both
follow one policy, kept in ``_base``: retries, backoff, Retry-After, and where the
key is sent. Every endpoint (``client.text_to_video``, ``client.retake``, ...)
offers ``submit``, ``get``, ``wait``, ``cancel``, ``download`` and ``generate``. The
client itself offers ``upload``, and any ``*_uri`` field also accepts a local file;
``client.jobs`` lists the key's jobs (an ltxserve extension). Every submit carries
an ``Idempotency-Key``, so its retries never make a second job. The
exception tree is drawn in ``ltxserve.client._exceptions``. docs/sdk.md is the
reference.
"""

from ltxserve.client._async import AsyncClient, AsyncEndpoint, AsyncJobs
from ltxserve.client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_POLL_INTERVAL,
    ProgressCallback,
    StatusCallback,
)
from ltxserve.client._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConcurrencyLimitError,
    ConfigurationError,
    ContentFilteredError,
    InsufficientFundsError,
    InternalServerError,
    InvalidRequestError,
    JobCancelledError,
    LtxError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServiceUnavailableError,
    WaitTimeoutError,
)
from ltxserve.client._sync import Client, Endpoint, Jobs
from ltxserve.client.types import (
    ENDPOINTS,
    AudioToVideoRequest,
    CompletedJob,
    EndpointName,
    ExtendRequest,
    FailedJob,
    Generation,
    ImageToVideoRequest,
    JobError,
    JobPage,
    JobStatus,
    PendingJob,
    ProcessingJob,
    RequestModel,
    RetakeRequest,
    SubmittedJob,
    TerminalJob,
    TextToVideoRequest,
    UploadTicket,
    VideoToVideoHdrRequest,
    VideoToVideoReframeRequest,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_POLL_INTERVAL",
    "ENDPOINTS",
    "Client",
    "AsyncClient",
    "Endpoint",
    "AsyncEndpoint",
    "Jobs",
    "AsyncJobs",
    "JobPage",
    "ProgressCallback",
    "StatusCallback",
    "TextToVideoRequest",
    "ImageToVideoRequest",
    "AudioToVideoRequest",
    "RetakeRequest",
    "ExtendRequest",
    "VideoToVideoHdrRequest",
    "VideoToVideoReframeRequest",
    "RequestModel",
    "EndpointName",
    "SubmittedJob",
    "UploadTicket",
    "Generation",
    "JobError",
    "JobStatus",
    "TerminalJob",
    "PendingJob",
    "ProcessingJob",
    "CompletedJob",
    "FailedJob",
    "LtxError",
    "ConfigurationError",
    "APIConnectionError",
    "APITimeoutError",
    "WaitTimeoutError",
    "APIError",
    "InvalidRequestError",
    "JobCancelledError",
    "AuthenticationError",
    "InsufficientFundsError",
    "NotFoundError",
    "RequestTooLargeError",
    "ContentFilteredError",
    "RateLimitError",
    "ConcurrencyLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
]
