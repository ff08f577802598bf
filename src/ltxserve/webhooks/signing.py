"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the
bytes of the key's secret, written ``whsec_<base64>``. The HMAC is the
``standardwebhooks`` package's (the reference implementation, no dependencies);
this module only makes secrets and assembles the headers (the ``webhook-id`` is
the delivery row's id, jobs/store/deliveries.py).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits, as the specification suggests (24 to 64 bytes)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(secret: str, message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The three signature headers for one attempt (the timestamp is the attempt's)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(secret).sign(message_id, when, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
