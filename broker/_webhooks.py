"""Where notifications go out: signed POSTs to the members' webhooks, on the adapters' client.

Each recipient origin gets a :class:`adapters._wire.Pool` of keep-alive connections, opened on
its first delivery, so a broker whose members register no webhook holds none. ``https`` uses
the default TLS context: the system's trust store, certificate and host name verified. No
redirects are followed (a 3xx is an answer that is not 2xx, so the row is retried), no proxy
is used (``HTTPS_PROXY`` is not read), and the timeout covers the whole delivery: waiting for
a connection, connecting, and the answer. It replaced an ``httpx.AsyncClient``, whose import
(≈3 MB) and CA bundle (≈3 MB) each worker held whether or not a webhook was ever called.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from adapters._wire import Origin, Pool, WireError

__all__ = ["WebhookClient", "WebhookUnreachable"]

#: Deliveries to one origin at a time; the notifier sends a batch of 20 at most.
_CONNECTIONS_PER_ORIGIN = 20

#: How long an idle connection is kept: under the 5 s of common servers' own idle limit.
_KEEPALIVE_SECONDS = 4.0

#: Sent with every delivery, beside the signed headers: the answer's body is not read, but an
#: encoded one would be refused as unreadable, and some gateways refuse a request without a
#: User-Agent.
_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "simpul-broker"}


class WebhookUnreachable(Exception):
    """No answer came: the connection was refused, reset, or closed before an answer."""


class WebhookClient:
    """POSTs to webhook URLs; each call's answer is its HTTP status, within ``timeout``."""

    def __init__(self, *, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        self._tls = tls
        self._pools: dict[str, Pool] = {}
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url``; the answer's status. Raises WebhookUnreachable, TimeoutError
        (no answer within the timeout), or ValueError for a URL or header that cannot be sent."""
        parts = urlsplit(url)
        if parts.query or parts.fragment:  # the registry refuses them; never send one part
            raise ValueError("a webhook URL has no query or fragment")
        pool = self._pool(f"{parts.scheme}://{parts.netloc}")
        sent = _HEADERS | dict(headers)
        try:
            async with asyncio.timeout(self._timeout):
                status, _ = await pool.request("POST", parts.path or "/", sent, body)
        except WireError as exc:
            raise WebhookUnreachable(str(exc)) from exc
        return status

    def _pool(self, base: str) -> Pool:
        if self._closed:
            raise RuntimeError("the webhook client is closed")
        pool = self._pools.get(base)
        if pool is None:
            if self._tls is None and base.startswith("https:"):
                # One context for every recipient: each loads the system's trust store.
                self._tls = ssl.create_default_context()
            origin = Origin.parse(base, tls=self._tls)  # ValueError for what is not http(s)
            pool = Pool(origin, limit=_CONNECTIONS_PER_ORIGIN, keepalive=_KEEPALIVE_SECONDS)
            self._pools[base] = pool
        return pool

    async def aclose(self) -> None:
        """Close every idle connection; later posts are refused."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
