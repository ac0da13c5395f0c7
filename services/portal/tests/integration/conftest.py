"""The portal's integration fixtures: the real Keycloak of `keycloak_support` (tests/support),
started once per session by whichever test needs it first."""

from keycloak_support import keycloak

__all__ = ["keycloak"]
