"""Secrets the studio must give back later (web service keys, kubeconfigs), stored
encrypted at rest with a key derived from SECRET_KEY (Fernet: AES-128-CBC + HMAC).

Rotating SECRET_KEY makes stored secrets unreadable: `decrypt` then raises
`SecretUnreadable`, and the owner regenerates keys or uploads the kubeconfig again."""

from __future__ import annotations

import base64
import hashlib
import secrets as _secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret was encrypted under another SECRET_KEY (or was tampered with)."""


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"mlstudio-secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plain: str) -> str:
    """The encrypted form of `plain`, as text for a TextField; "" stays ""."""
    if not plain:
        return ""
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    """The plain text of what `encrypt` returned; "" stays ""."""
    if not stored:
        return ""
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("the secret was stored under another SECRET_KEY") from exc


def new_key(nbytes: int = 32) -> str:
    """A fresh random key, URL-safe (what services hand out as primary/secondary keys)."""
    return _secrets.token_urlsafe(nbytes)
