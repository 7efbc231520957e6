"""Signed bearer tokens for viewers, buyers and brands.

A token is `role.subject.expiry.signature` with an HMAC-SHA256 over the rest, so
the server checks it without a lookup and a forged or expired one is refused.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "buyer", "brand"]
ROLES: tuple[Role, ...] = ("viewer", "buyer", "brand")


class TokenError(Exception):
    """The token is missing, malformed, forged or expired."""


@dataclass(frozen=True)
class Identity:
    role: Role
    subject: str  # viewer id, buyer id, or brand id
    name: str  # nickname or display name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tokens:
    def __init__(self, secret: bytes | None = None, ttl: float = 7 * 24 * 3600) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.ttl = ttl

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())

    def issue(self, identity: Identity, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + self.ttl)
        body = ".".join((identity.role, _b64(identity.subject.encode()), _b64(identity.name.encode()), str(expiry)))
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now: float | None = None) -> Identity:
        parts = token.split(".")
        if len(parts) != 5:
            raise TokenError("malformed token")
        body, signature = ".".join(parts[:4]), parts[4]
        if not hmac.compare_digest(signature, self._sign(body)):
            raise TokenError("invalid token signature")
        role, subject, name, expiry = parts[:4]
        if role not in ROLES:
            raise TokenError("unknown role")
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            raise TokenError("token expired")
        try:
            return Identity(role, _unb64(subject).decode(), _unb64(name).decode())  # type: ignore[arg-type]
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("malformed token") from exc
