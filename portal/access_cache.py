"""A short memory of access decisions, for callers that send many small requests.

A client logging a run sends many small requests with the same token to the same
workspace. Who it is and what role it holds there is remembered for a few seconds per
process (ACCESS_CACHE_SECONDS), keyed by a hash of the credentials and the workspace: a
revoked token or a changed role takes effect within that time, and deleting a
workspace clears this process's memory at once. Sessions are not cached (callers pass
no credentials for them).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

_CACHE: dict[bytes, tuple[float, Any]] = {}
_MAX_ENTRIES = 1024


def cached_access(
    credentials: str, scope: tuple[Any, ...], decide: Callable[[], tuple[Any, Any, Any]]
) -> tuple[Any, Any, Any]:
    """`decide()` → (user, token, access), remembered under (credentials, scope).

    `credentials` is the request's Authorization header; empty means "don't cache".
    The answer is kept no longer than the token it was made with."""
    ttl = settings.ACCESS_CACHE_SECONDS
    if not credentials or ttl <= 0:
        return decide()
    key = hashlib.sha256("\n".join([credentials, *map(str, scope)]).encode()).digest()
    cached = _CACHE.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    answer = decide()
    if len(_CACHE) >= _MAX_ENTRIES:
        _CACHE.clear()
    expires = time.monotonic() + ttl
    token = answer[1]
    if token is not None and getattr(token, "expires_at", None) is not None:
        left = (token.expires_at - timezone.now()).total_seconds()
        expires = min(expires, time.monotonic() + left)
    _CACHE[key] = (expires, answer)
    return answer


def access_cache_clear() -> None:
    """Forget every remembered decision of this process."""
    _CACHE.clear()
