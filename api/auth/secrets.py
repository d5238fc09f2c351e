"""Password hashing (argon2) and random credentials stored as SHA-256 digests.

API tokens, session cookies and CSRF tokens carry 256 random bits, so an unsalted SHA-256 digest
is enough to make a leaked table useless and keeps the per-request lookup fast (one indexed
equality). Passwords are low-entropy and get argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "sh_"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        # Same work as a real check, so a missing hash does not reveal itself by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh API token (shown to its owner once): ``sh_`` + 43 URL-safe characters."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    """A random value for cookies and CSRF tokens."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """Hex SHA-256 of a random credential; what the database stores and looks up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
