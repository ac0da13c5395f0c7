"""Desk policies as data: models validated at load, and the shipped policy files (pure)."""

from desk_policies.actions import Action, Permission
from desk_policies.loader import (
    POLICIES_DIR,
    SHIPPED,
    PolicyError,
    load_policies,
    load_policy,
    parse_policy,
    shipped_policy,
)
from desk_policies.model import DeskPolicy, Side, Status, StatusCategory

__all__ = [
    "POLICIES_DIR",
    "SHIPPED",
    "Action",
    "DeskPolicy",
    "Permission",
    "PolicyError",
    "Side",
    "Status",
    "StatusCategory",
    "load_policies",
    "load_policy",
    "parse_policy",
    "shipped_policy",
]
