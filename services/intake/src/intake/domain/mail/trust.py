"""Whom the gateway believes: the DMARC verdict on a message's From domain, and who gave it.

Two sources, never the message's own word:
- `from_mx`: the `Authentication-Results` headers that our MX added, recognised by their
  authserv-id (`MAIL_AUTHSERV_IDS`). Any other such header was written by someone else and is
  ignored, wherever it stands. A message with no header of ours did not come through our MX.
- `dmarc_verdict`: the gateway's own checks (DKIM signatures, SPF of the SMTP session, the From
  domain's DMARC record), made by the adapter that speaks DNS, turned here into the same verdict.

DMARC (RFC 7489): the From domain is authenticated when a valid DKIM signature's `d=` or an SPF
`pass` for the `MAIL FROM` domain is aligned with it (relaxed: within the same organisational
domain, which is the domain where the DMARC record was found walking up from the From domain,
DMARCbis-style; strict, `adkim=s`/`aspf=s`: the very same domain). Without a DMARC record an
aligned pass still authenticates; otherwise the verdict is `none`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Dmarc(StrEnum):
    PASS = "pass"  # the From domain is authenticated (aligned DKIM or SPF)
    FAIL = "fail"  # the domain publishes DMARC and the message is not authenticated
    NONE = "none"  # no DMARC record, and nothing aligned passed: not authenticated
    TEMPERROR = "temperror"  # DNS did not answer: ask the sender to retry (451)
    ABSENT = "absent"  # nobody we trust checked the message (not through our MX)


@dataclass(frozen=True)
class SenderCheck:
    """The verdict on the From domain, who gave it (`by`) and why."""

    dmarc: Dmarc
    by: str
    reason: str = ""

    @property
    def authenticated(self) -> bool:
        return self.dmarc is Dmarc.PASS


@dataclass(frozen=True)
class DmarcRecord:
    """A `v=DMARC1` record, and the domain it was found at (the organisational domain)."""

    domain: str
    policy: str = "none"  # p=
    strict_dkim: bool = False  # adkim=s
    strict_spf: bool = False  # aspf=s


UNCHECKED = SenderCheck(Dmarc.ABSENT, "nobody", "the sender was not checked")
_RESULT = re.compile(r"(?:^|;)\s*dmarc\s*=\s*([a-z]+)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"header\.from\s*=\s*([^\s;]+)", re.IGNORECASE)


def authserv_id(result: str) -> str:
    """The authserv-id of an `Authentication-Results` value (its first word)."""
    words = result.split(";", 1)[0].split()
    return words[0].lower() if words else ""


def from_mx(results: Sequence[str], authserv_ids: Collection[str], from_domain: str) -> SenderCheck:
    """The verdict of our MX: only the headers whose authserv-id is ours count. A `dmarc=pass`
    for another domain than the From address's (`header.from`) is no pass."""
    ours = [r for r in results if authserv_id(r) in authserv_ids]
    if not ours:
        return SenderCheck(
            Dmarc.ABSENT, "nobody",
            f"no Authentication-Results of our MX ({', '.join(sorted(authserv_ids))}): "
            "not received through it",
        )  # fmt: skip
    verdicts = []
    for result in ours:
        found = _RESULT.search(result)
        verdict = found.group(1).lower() if found else "none"
        named = _HEADER_FROM.search(result)
        if verdict == "pass" and named and named.group(1).lower().strip(".") != from_domain:
            verdict = "none"
        verdicts.append(verdict)
    by = authserv_id(ours[0])
    for value in (Dmarc.FAIL, Dmarc.PASS, Dmarc.TEMPERROR):
        if value in verdicts:
            return SenderCheck(value, by, f"our MX {by} says dmarc={value}")
    return SenderCheck(Dmarc.NONE, by, f"our MX {by} found no DMARC pass")


def parse_dmarc_record(domain: str, text: str) -> DmarcRecord | None:
    """A DMARC record from its TXT text (None: not one)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        tags.setdefault(name.strip().lower(), value.strip().lower())
    if tags.get("v") != "dmarc1":
        return None
    policy = tags.get("p", "none")
    return DmarcRecord(
        domain=domain.lower(),
        policy=policy if policy in ("none", "quarantine", "reject") else "none",
        strict_dkim=tags.get("adkim") == "s",
        strict_spf=tags.get("aspf") == "s",
    )


def policy_domains(from_domain: str) -> list[str]:
    """Where to look for the From domain's DMARC record, nearest first (DMARCbis tree walk:
    at most 8 names, never a top-level domain alone)."""
    labels = from_domain.lower().strip(".").split(".")
    names = [".".join(labels)]
    if len(labels) > 8:
        labels = labels[-7:]
        names.append(".".join(labels))
    while len(labels) > 2:
        labels = labels[1:]
        names.append(".".join(labels))
    return list(dict.fromkeys(names))


def _within(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def aligned(identifier: str, from_domain: str, record: DmarcRecord | None, strict: bool) -> bool:
    """Whether an authenticated domain (DKIM `d=`, the `MAIL FROM` domain) vouches for From."""
    identifier, from_domain = identifier.lower().strip("."), from_domain.lower().strip(".")
    if not identifier:
        return False
    if identifier == from_domain:
        return True
    if strict:
        return False
    organisation = record.domain if record else from_domain
    return _within(identifier, organisation) and _within(from_domain, organisation)


def dmarc_verdict(
    from_domain: str,
    record: DmarcRecord | None,
    dkim_domains: Sequence[str],
    spf_result: str,
    spf_domain: str,
    *,
    by: str,
    temporary: str | None = None,
) -> SenderCheck:
    """The DMARC verdict from the gateway's own checks: `dkim_domains` are the `d=` of the
    signatures that verified, `spf_result` the SPF result for `spf_domain` (the `MAIL FROM`
    domain), `record` the From domain's DMARC record (None: none found), `temporary` what DNS
    failed to answer, if anything did."""
    strict_dkim = record.strict_dkim if record else False
    strict_spf = record.strict_spf if record else False
    for domain in dkim_domains:
        if aligned(domain, from_domain, record, strict_dkim):
            return SenderCheck(Dmarc.PASS, by, f"DKIM signature of {domain} aligned")
    if spf_result == "pass" and aligned(spf_domain, from_domain, record, strict_spf):
        return SenderCheck(Dmarc.PASS, by, f"SPF pass for {spf_domain} aligned")
    if temporary:
        return SenderCheck(Dmarc.TEMPERROR, by, temporary)
    seen = f"DKIM {', '.join(dkim_domains) or 'none valid'}; SPF {spf_result} for {spf_domain!r}"
    if record is None:
        return SenderCheck(Dmarc.NONE, by, f"{from_domain} publishes no DMARC record ({seen})")
    return SenderCheck(
        Dmarc.FAIL, by, f"{from_domain} fails DMARC (p={record.policy} at {record.domain}; {seen})"
    )
