"""Identity: bearer tokens, JWTs whose claims pin a caller to one organization.

Claims: ``org`` (the org id), ``sub`` (who the caller is: recorded with every answer, cancel
and retry), ``roles`` and ``exp`` (required: every token expires). Roles:

- none: a member of the org, who may read and act (start, answer, cancel, register...);
- ``viewer``: read only (get, list, watch, validate);
- ``admin``: the org's administrator (a member, and what prompts reserve for the role);
- ``platform``: provisions and lists organizations (OrganizationService), which no org role
  may do. Tokens are signed with HS256 and a shared secret, or with
RS256/ES256 and verified with a configured public key.

The control plane verifies tokens; ``engined dev`` and ``enginectl token create`` issue them.
This module needs only PyJWT, so issuing a token loads nothing of the engine's stack.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

import jwt

from engine.context import InvalidOrgIdError, validate_org_id
from engine.errors import EngineError

__all__ = [
    "ADMIN",
    "PLATFORM",
    "VIEWER",
    "Claims",
    "PermissionDeniedError",
    "TokenVerifier",
    "UnauthenticatedError",
    "issue_token",
]

ADMIN: Final = "admin"
"""The org's administrator role."""
VIEWER: Final = "viewer"
"""The read-only role: a token with it (and without admin) may only read."""
PLATFORM: Final = "platform"
"""The role that provisions organizations, distinct from any org's admin."""
_ASYMMETRIC: Final = frozenset({"RS256", "ES256"})
_LONGEST_SUBJECT: Final = 200
_VERIFIED_KEPT: Final = 4096
"""Most verified tokens a verifier remembers (the oldest go first)."""


class UnauthenticatedError(EngineError):
    """No token, or a token that is malformed, forged or expired."""

    code: ClassVar[str] = "UNAUTHENTICATED"
    reason: ClassVar[str] = "UNAUTHENTICATED"


class PermissionDeniedError(EngineError):
    """A valid caller without the role a call needs."""

    code: ClassVar[str] = "PERMISSION_DENIED"
    reason: ClassVar[str] = "PERMISSION_DENIED"


@dataclass(frozen=True)
class Claims:
    """Who a verified token speaks for."""

    org_id: str
    roles: tuple[str, ...]
    subject: str = ""

    @property
    def is_platform(self) -> bool:
        """Whether the caller may provision organizations."""
        return PLATFORM in self.roles

    @property
    def read_only(self) -> bool:
        """Whether the caller may only read (``viewer`` without ``admin``)."""
        return VIEWER in self.roles and ADMIN not in self.roles


class TokenVerifier:
    """Verifies bearer tokens.

    Args:
        key: The HS256 shared secret, or the PEM public key for RS256/ES256.
        algorithm: ``HS256``, ``RS256`` or ``ES256``.
        issuer: When set, the ``iss`` claim must equal it.
        audience: When set, the ``aud`` claim must contain it.
    """

    def __init__(
        self,
        key: str | bytes,
        algorithm: str = "HS256",
        *,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        if algorithm not in _ASYMMETRIC | {"HS256"}:
            raise ValueError(f"unsupported token algorithm {algorithm!r}: use HS256, RS256, ES256")
        if not key:
            raise ValueError("a token key is required")
        self.key = key
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        # Tokens verified already, until they expire: an executor sends the same token with
        # every poll, heartbeat and result, and a signature check costs more than the call.
        self._verified: dict[str, tuple[Claims, float]] = {}

    def verify(self, authorization: str | None) -> Claims:
        """Verify an ``authorization`` metadata value (``Bearer <jwt>``).

        Raises:
            UnauthenticatedError: Saying what is wrong (missing, malformed, expired, forged).
        """
        if not authorization:
            raise UnauthenticatedError("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("the authorization metadata must be 'Bearer <token>'")
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        verified, expires = self._decode(token)
        if len(self._verified) >= _VERIFIED_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[token] = (verified, expires)
        return verified

    def _decode(self, token: str) -> tuple[Claims, float]:
        """Check the token's signature and claims: its claims, and when it expires."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "org"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the token has expired") from None
        except jwt.MissingRequiredClaimError as error:
            raise UnauthenticatedError(f"the token lacks the '{error.claim}' claim") from None
        except jwt.InvalidTokenError as error:
            raise UnauthenticatedError(f"invalid token: {error}") from None
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise UnauthenticatedError("the token's 'roles' claim must be a list of strings")
        try:
            org_id = validate_org_id(claims["org"])
        except InvalidOrgIdError as error:
            raise UnauthenticatedError(f"the token's 'org' claim is invalid: {error}") from None
        subject = claims.get("sub", "")
        if (
            not isinstance(subject, str)
            or len(subject) > _LONGEST_SUBJECT
            or not subject.isprintable()
        ):
            raise UnauthenticatedError(
                f"the token's 'sub' claim must be printable text of at most {_LONGEST_SUBJECT} "
                "characters"
            )
        return Claims(org_id, tuple(roles), subject), float(claims["exp"])


def issue_token(
    key: str | bytes,
    org_id: str,
    *,
    roles: Sequence[str] = (),
    ttl_seconds: int = 3600,
    algorithm: str = "HS256",
    issuer: str | None = None,
    subject: str | None = None,
) -> str:
    """Sign a token for ``org_id`` (``key`` is the secret, or the PEM private key)."""
    validate_org_id(org_id)
    if ttl_seconds <= 0:
        raise ValueError(f"ttl must be positive, got {ttl_seconds}")
    now = int(time.time())
    payload: dict[str, object] = {
        "org": org_id,
        "roles": list(roles),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if issuer:
        payload["iss"] = issuer
    if subject:
        payload["sub"] = subject
    return jwt.encode(payload, key, algorithm=algorithm)
