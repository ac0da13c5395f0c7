"""Sign a development identity token with the key `deploy/local/system.py` made, to call intake,
workflow or sla by hand (curl, a script) on a developer's machine:

    TOKEN=$(uv run python deploy/local/dev_token.py anne@acme.example --organisation acme \\
            --audience intake)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8001/desks

A token is for one service (`--audience`); staff name their roles per desk
(`--role saas-desk:supervisor`, repeatable). Anyone holding the development key can sign as
anyone: it is for this machine only.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from system import ROOT

from desk_contracts.identity import AUDIENCES, SCOPES, VIAS, Identity
from desk_platform.identity import Signer, load_signing_keys


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("subject", help="who calls: an e-mail address")
    parser.add_argument("--audience", required=True, choices=AUDIENCES, help="the service called")
    parser.add_argument("--organisation", help="a customer's organisation (e.g. acme)")
    parser.add_argument(
        "--role", action="append", default=[], metavar="DESK:ROLE", help="a role held at a desk"
    )
    parser.add_argument("--read-only", action="store_true", help="a token that may not write")
    parser.add_argument("--via", default="password", choices=VIAS, help="how they signed in")
    parser.add_argument("--minutes", type=int, default=60, help="how long the token is valid")
    parser.add_argument("--state", type=Path, default=ROOT / ".state" / "system")
    args = parser.parse_args()
    roles: dict[str, tuple[str, ...]] = {}
    for held in args.role:
        desk, sep, role = held.partition(":")
        if not sep or not desk or not role:
            parser.error(f"--role {held!r}: write DESK:ROLE, e.g. saas-desk:agent")
        roles[desk] = (*roles.get(desk, ()), role)
    identity = Identity(
        subject=args.subject.lower(),
        name=args.subject,
        organisation=args.organisation,
        roles=roles,
        scope=frozenset(("read",) if args.read_only else SCOPES),
        via=args.via,
    )
    signer = Signer(load_signing_keys(args.state / "keys" / "signing"))
    print(signer.token(identity, args.audience, datetime.now(UTC), timedelta(minutes=args.minutes)))


if __name__ == "__main__":
    main()
