"""Who may score: service keys (compared by their sha256) and short-lived tokens.

A token is `<expiry epoch>.<urlsafe base64 of HMAC-SHA256(secret, "<service>:<expiry>")>`:
the server needs only the secret it shares with the studio, no state and no clock
agreement beyond the expiry itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def hash_key(key: str) -> str:
    """The form keys are kept in the config file: sha256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, key_hashes: list[str] | tuple[str, ...]) -> bool:
    """Whether `key` is one of the service's keys; every hash is compared, each in
    constant time, so the answer's timing says nothing about which hash came close."""
    digest = hash_key(key).encode()
    found = False
    for expected in key_hashes:
        if expected and hmac.compare_digest(digest, expected.encode()):
            found = True
    return found


def _signature(secret: str, service: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"{service}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def mint_token(secret: str, service: str, ttl_s: int) -> tuple[str, int]:
    """A token for `service` valid for `ttl_s` seconds: (token, expiry as epoch seconds)."""
    expires = int(time.time()) + int(ttl_s)
    return f"{expires}.{_signature(secret, service, expires)}", expires


def verify_token(secret: str, service: str, token: str) -> bool:
    """Whether `token` was minted with `secret` for `service` and has not expired."""
    if not secret or not token:
        return False
    expires_text, sep, signature = token.partition(".")
    if not sep or not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires <= time.time():
        return False
    return hmac.compare_digest(signature.encode(), _signature(secret, service, expires).encode())


def authorized(header: str | None, key_hashes: list[str], secret: str, service: str) -> bool:
    """Whether an `Authorization` header value carries a key or a valid token."""
    if not header:
        return False
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return False
    if key_matches(credential, key_hashes):
        return True
    # Keys are random url-safe strings; a token always has "<digits>.<signature>".
    return "." in credential and verify_token(secret, service, credential)
