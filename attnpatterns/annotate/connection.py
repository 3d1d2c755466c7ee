"""The connection to Label Studio: the SDK client with bounded retries and key-free one-line errors.

``LABEL_STUDIO_URL`` (default ``http://127.0.0.1:8080``) and ``LABEL_STUDIO_API_KEY`` are read from the environment
only. The key is never written to a file, a log or an error message (every message is scrubbed of it). Connection
errors, timeouts and HTTP 5xx/429 are retried a few times with exponential backoff, then reported in one line that
names the URL.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass
class Connection:
    """An SDK client with bounded retries and key-free one-line errors."""

    url: str
    sdk: Any  # label_studio_sdk.LabelStudio
    _key: str = field(repr=False)
    retries: int = 3
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def auth_header(self) -> dict[str, str]:
        """The API key as the Authorization header of a plain HTTP request (for what the SDK does not cover)."""
        return {"Authorization": f"Token {self._key}"}

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)``, retried on connection errors, timeouts, 429 and 5xx."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return fn(*args, **kwargs)
            except ApiError as e:
                code = e.status_code
                if code == 403 and "reserved network address" in str(e.body):
                    raise UserError(
                        f"Label Studio at {self.url} refuses to {what}: it blocks ML backends on local addresses; "
                        "start it with 'attn annotate serve' (which allows them) or set ML_BLOCK_LOCAL_IP=false in "
                        "its environment."
                    ) from None
                if code in (401, 403):
                    raise UserError(
                        f"Label Studio at {self.url} rejected the API key (HTTP {code}) when trying to {what}; "
                        "check LABEL_STUDIO_API_KEY (Account & Settings > Legacy Token)."
                    ) from None
                if code is not None and (code >= 500 or code == 429) and not last:
                    log.warning("Label Studio at %s: HTTP %s on %s; retrying in %.1f s", self.url, code, what, delay)
                    self.sleep(delay)
                    delay *= 2
                    continue
                if code is not None and (code >= 500 or code == 429):
                    raise UserError(
                        f"Label Studio at {self.url} failed to {what} (HTTP {code}) after "
                        f"{self.retries + 1} tries; see the server's log."
                    ) from None
                raise UserError(
                    self.scrub(f"Label Studio at {self.url} refused to {what} (HTTP {code}): {_short(e.body)}")
                ) from None
            except (httpx.TransportError, ConnectionError) as e:
                if not last:
                    log.warning(
                        "Label Studio at %s unreachable (%s); retrying in %.1f s", self.url, type(e).__name__, delay
                    )
                    self.sleep(delay)
                    delay *= 2
                    continue
                raise UserError(
                    f"cannot reach Label Studio at {self.url} ({type(e).__name__}) after {self.retries + 1} tries; "
                    "start it with 'attn annotate serve' or set LABEL_STUDIO_URL."
                ) from None


def _short(body) -> str:
    if isinstance(body, dict):
        body = body.get("validation_errors") or body.get("detail") or body
    return " ".join(str(body).split())[:300]


def connect(retries: int = 3, backoff: float = 0.5, timeout: float = 120) -> Connection:
    """A checked connection from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (environment only)."""
    from label_studio_sdk import LabelStudio

    url = os.environ.get("LABEL_STUDIO_URL", DEFAULT_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"LABEL_STUDIO_URL '{url}' must start with http:// or https://, e.g. {DEFAULT_URL}.")
    key = os.environ.get("LABEL_STUDIO_API_KEY", "").strip()
    if not key:
        raise UserError(
            "LABEL_STUDIO_API_KEY is not set; export the token of your Label Studio user "
            "(Account & Settings > Legacy Token, or the key 'attn annotate serve' was started with)."
        )
    sdk = LabelStudio(base_url=url, api_key=key, timeout=timeout)
    conn = Connection(url=url, sdk=sdk, _key=key, retries=retries, backoff=backoff)
    conn.call("check the API key", sdk.users.whoami)
    return conn
