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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import jwt

from engine.context import InvalidOrgIdError, validate_org_id
from engine.errors import EngineError

__all__ = [
    "ADMIN",
    "LONGEST_LINK_TTL",
    "PLATFORM",
    "VIEWER",
    "AnswerLink",
    "Claims",
    "LinkRefusedError",
    "LinkSigner",
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


LONGEST_LINK_TTL: Final = 30 * 24 * 3600
"""Seconds an answer link may live at most (30 days)."""
_LINK_TYPE: Final = "engine-answer-link"


class LinkRefusedError(EngineError):
    """An answer link that is malformed, forged (or of another engine), or expired."""

    code: ClassVar[str] = "PERMISSION_DENIED"
    reason: ClassVar[str] = "LINK_REFUSED"


@dataclass(frozen=True)
class AnswerLink:
    """What an answer link may do: answer one action of one run of one org, as ``subject``.

    Attributes:
        org_id: The org of the run.
        workflow_id: The run.
        action_id: The action it answers.
        subject: Who answers through it (the person it was sent to): the prompt's rules apply.
        expires: When it stops working (seconds since the epoch).
        answer: The answer it gives when it fixes one (an approve or a reject link), else None.
        fixed: Whether it fixes its answer.
    """

    org_id: str
    workflow_id: str
    action_id: str
    subject: str
    expires: int
    answer: Any = None
    fixed: bool = False


class LinkSigner:
    """Signs and checks answer links (HS256 with a key of their own, never a token key: a link
    is no bearer token, and a token is no link)."""

    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("an answer-link key is required")
        self.key = key

    def sign(self, link: AnswerLink) -> str:
        payload: dict[str, Any] = {
            "typ": _LINK_TYPE,
            "org": link.org_id,
            "wf": link.workflow_id,
            "act": link.action_id,
            "sub": link.subject,
            "exp": link.expires,
            "jti": uuid.uuid4().hex,
        }
        if link.fixed:
            payload["ans"] = link.answer
        return jwt.encode(payload, self.key, algorithm="HS256")

    def verify(self, token: str) -> AnswerLink:
        """The link's grant.

        Raises:
            LinkRefusedError: Saying what is wrong (expired, forged, not a link).
        """
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                options={"require": ["exp", "org", "wf", "act", "sub", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise LinkRefusedError("the link has expired") from None
        except jwt.PyJWTError as error:
            raise LinkRefusedError(f"the link is not valid: {error}") from None
        if claims.get("typ") != _LINK_TYPE:
            raise LinkRefusedError("the link is not valid: it is not an answer link")
        return AnswerLink(
            org_id=str(claims["org"]),
            workflow_id=str(claims["wf"]),
            action_id=str(claims["act"]),
            subject=str(claims["sub"]),
            expires=int(claims["exp"]),
            answer=claims.get("ans"),
            fixed="ans" in claims,
        )
