"""Bearer tokens: made at random, stored only as a SHA-256 hash, compared in constant time.

A run's token is 256 bits from ``secrets``; a fast hash is enough for secrets of that
strength (no password stretching needed), and it lets the service check a token without
ever storing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from service.errors import Forbidden, Unauthorized
from service.settings import Settings

TOKEN_PREFIX = "rct_"


def new_token() -> str:
    """A fresh run token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_NO_RUN_HASH = hash_token("compared when there is no run")


def digest_matches(digest: str, token_hash: str | None) -> bool:
    """Whether ``digest`` (:func:`hash_token` of a token) is ``token_hash``, in time
    independent of where they differ. With no run (``None``) it is compared with a dummy
    digest all the same, so a missing run costs what a wrong token does."""
    same = hmac.compare_digest(digest, _NO_RUN_HASH if token_hash is None else token_hash)
    return same and token_hash is not None


def is_operator(token: str | None, admin_token: str | None) -> bool:
    """Whether ``token`` is the operator token (always false when none is configured)."""
    if token is None or admin_token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), admin_token.encode("utf-8"))


def require_metrics_reader(token: str | None, settings: Settings) -> None:
    """Raise unless ``token`` may read ``/metrics``: anyone may while it shows no run (no
    ``run_metrics``, no ``metrics_token``); else the metrics token or the operator token."""
    if not settings.run_metrics and settings.metrics_token is None:
        return
    what = "/metrics on this deployment"
    if token is None:
        raise Unauthorized(
            f"{what} needs 'Authorization: Bearer <token>': CURRICULUM_METRICS_TOKEN, or the "
            "operator token"
        )
    secrets_ = (settings.metrics_token, settings.admin_token)
    readers = [s.get_secret_value() for s in secrets_ if s is not None]
    if not any([hmac.compare_digest(token.encode(), r.encode()) for r in readers]):
        raise Forbidden(
            f"{what} needs CURRICULUM_METRICS_TOKEN or the operator token; this token is neither"
        )


def require_operator(token: str | None, settings: Settings, what: str) -> None:
    """Raise unless ``token`` is the deployment's operator token (401 without a token)."""
    if token is None:
        raise Unauthorized(f"{what} needs 'Authorization: Bearer <operator token>'")
    admin = settings.admin_token
    if admin is None:
        raise Forbidden(
            f"{what} needs the operator token, and this deployment sets none (ADMIN_TOKEN)"
        )
    if not is_operator(token, admin.get_secret_value()):
        raise Forbidden(f"{what} needs the operator token (ADMIN_TOKEN); this token is not it")
