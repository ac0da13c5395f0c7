"""Who calls a service: the verified identity a signed token carries (pure contract).

The portal, which owns identity, signs an `Identity` into a short-lived token (a JWT: see
`desk_platform.identity`) for one service (its audience); intake, workflow and sla verify the
signature and read who acts from it, never from plain headers. Its claims:

- `sub`: the person's address (lower case), or `service:<name>` for one of the system's own
  parts (the e-mail gateway, sla's timers);
- `name`: how to call them; `org`: the customer's organisation (none for staff);
- `roles`: desk id -> the roles the directory grants there (staff, a service's `system`);
  customers hold no role: a person of an organisation may act on the customer side of any desk;
- `scope`: what the token may do (`read`, `write`): an API token may be read-only;
- `via`: how the person proved who they are (`password`, `link`, `sso`, `api_token`, `service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Scope = Literal["read", "write"]
Via = Literal["password", "link", "sso", "api_token", "service"]
SCOPES: tuple[Scope, ...] = ("read", "write")
VIAS: tuple[Via, ...] = ("password", "link", "sso", "api_token", "service")
AUDIENCES = ("intake", "workflow", "sla")  # the services that verify identity tokens
SERVICE_PREFIX = "service:"


@dataclass(frozen=True)
class Identity:
    """A verified caller: who, of which organisation, holding which desk roles, allowed what."""

    subject: str
    name: str = ""
    organisation: str | None = None
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scope: frozenset[Scope] = frozenset(SCOPES)
    via: Via = "password"

    @property
    def is_service(self) -> bool:
        return self.subject.startswith(SERVICE_PREFIX)

    def roles_at(self, desk: str) -> tuple[str, ...]:
        """The roles the directory grants this caller at `desk` (none for a customer)."""
        return tuple(self.roles.get(desk, ()))

    def may(self, scope: Scope) -> bool:
        return scope in self.scope

    def claims(self) -> dict[str, Any]:
        """The token's claims about the caller (the signer adds issuer, audience, times)."""
        claims: dict[str, Any] = {
            "sub": self.subject,
            "name": self.name,
            "roles": {desk: list(roles) for desk, roles in self.roles.items()},
            "scope": " ".join(s for s in SCOPES if s in self.scope),
            "via": self.via,
        }
        if self.organisation:
            claims["org"] = self.organisation
        return claims


class InvalidClaims(ValueError):
    """A signed token whose claims do not describe a caller."""


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The caller a verified token describes; InvalidClaims when its claims are malformed."""
    subject, name, organisation = claims.get("sub"), claims.get("name", ""), claims.get("org")
    roles, scope, via = claims.get("roles", {}), claims.get("scope", ""), claims.get("via")
    if not isinstance(subject, str) or not subject or len(subject) > 320:
        raise InvalidClaims("sub: not an identity")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidClaims("name: not a name")
    if organisation is not None and (not isinstance(organisation, str) or not organisation):
        raise InvalidClaims("org: not an organisation id")
    if not isinstance(roles, dict) or not all(
        isinstance(desk, str) and isinstance(held, list) and all(isinstance(r, str) for r in held)
        for desk, held in roles.items()
    ):
        raise InvalidClaims("roles: not desk -> list of roles")
    if not isinstance(scope, str) or not set(scope.split()) <= set(SCOPES):
        raise InvalidClaims("scope: unknown scope")
    if via not in VIAS:
        raise InvalidClaims("via: unknown")
    return Identity(
        subject=subject,
        name=name,
        organisation=organisation,
        roles={desk: tuple(held) for desk, held in roles.items()},
        scope=frozenset(s for s in SCOPES if s in scope.split()),
        via=via,
    )
