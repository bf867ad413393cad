"""Remembered consent-token checks: the costly steps a repeated token can skip.

A PERIODIC consent's token is the same string on every exchange. Verifying its Ed25519
signature (through joserfc) was the largest part of the consent step, and decoding and
type-checking its claims the next largest. The outcome of both depends only on the token's
bytes and the key that checked it, so it is remembered, keyed by the exact token, together with
that key: a token is a hit only when the verifier would pick the very same key object for it
again, so a changed key set never reuses an entry. Only successes are stored (a failed check
raises before anything is written), and everything else (the header's rules, ``iss``,
``exp``/``nbf``, the binding to the client's key and the consent's live status) is still
checked on every exchange by the callers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from joserfc.jwk import OKPKey

__all__ = ["DEFAULT_CACHE_SIZE", "MAX_CACHED_TOKEN_LENGTH", "VerifiedTokenCache"]

#: Tokens remembered per verifier (a bounded LRU).
DEFAULT_CACHE_SIZE: Final = 1024
#: Longer tokens are checked every time, which bounds the memory the cache can hold.
MAX_CACHED_TOKEN_LENGTH: Final = 4096


_T = TypeVar("_T")


class VerifiedTokenCache(Generic[_T]):
    """A bounded, thread-safe LRU of tokens that verified, with what the check returned."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("cache_size must not be negative")
        self._size = size
        self._entries: OrderedDict[str, tuple[OKPKey, _T]] = OrderedDict()
        self._lock = threading.Lock()

    def verified(self, token: str, key: OKPKey, verify: Callable[[str, OKPKey], _T]) -> _T:
        """What ``verify(token, key)`` returns: remembered, or computed now.

        ``verify`` must depend on nothing but its arguments, and raises when the token does
        not verify; nothing is remembered then.
        """
        if self._size == 0 or len(token) > MAX_CACHED_TOKEN_LENGTH:
            return verify(token, key)
        with self._lock:
            entry = self._entries.get(token)
            if entry is not None and entry[0] is key:
                self._entries.move_to_end(token)
                return entry[1]
        value = verify(token, key)
        with self._lock:
            self._entries[token] = (key, value)
            self._entries.move_to_end(token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
