"""Request budgets of /api/v1: per token (or user, or address), and for password login."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import throttling
from rest_framework.request import Request

from portal.api.access import request_token


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """API_THROTTLE_RATE requests per token: each token has its own budget, so one busy
    script does not starve the others of the same user. Browser sessions count per user,
    anonymous calls per client address."""

    scope = "token"

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATE or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = request_token(request)
        if token is not None:
            ident = f"t:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = f"a:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginRateThrottle(throttling.SimpleRateThrottle):
    """API_LOGIN_THROTTLE_RATE password attempts per client address at POST login, so
    passwords cannot be guessed at the speed of the general API budget."""

    scope = "login"

    def get_rate(self) -> str | None:
        return settings.API_LOGIN_THROTTLE_RATE or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
