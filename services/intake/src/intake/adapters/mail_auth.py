"""The gateway's own sender checks (`MAIL_VERIFY=self`): DKIM (dkimpy), SPF (pyspf) for the SMTP
session's peer address, HELO and `MAIL FROM`, and the From domain's DMARC record (dnspython),
turned into a verdict by `intake.domain.mail.trust.dmarc_verdict`.

Every DNS question goes to one resolver: the system's, or `MAIL_DNS_SERVER` (host:port) when
set, each query bounded by `timeout` seconds. The libraries are synchronous: a check runs in a
worker thread. pyspf asks DNS through its module-level `DNSLookup`; it is pointed once at a
function that uses the resolver of the check under way (a context variable, so two gateways
in one process each keep theirs).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import dkim
import dns.exception
import dns.resolver
import spf
import structlog

from intake.domain.mail.message import InboundMail
from intake.domain.mail.trust import (
    DmarcRecord,
    SenderCheck,
    dmarc_verdict,
    parse_dmarc_record,
    policy_domains,
)

log = structlog.get_logger(__name__)

MAX_SIGNATURES = 5  # DKIM signatures verified per message (more are ignored)
_RESOLVER: contextvars.ContextVar[dns.resolver.Resolver] = contextvars.ContextVar("mail_dns")


class TemporaryDnsError(Exception):
    """DNS did not answer (timeout, no server reachable)."""


def resolver_for(server: str = "", timeout: float = 5.0) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only `server` ("host:port" or "host")."""
    if not server:
        resolver = dns.resolver.Resolver()
    else:
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "53")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(port)
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT records at `name` (each one's strings joined); [] when there are none."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
        raise TemporaryDnsError(f"DNS {name}: {type(error).__name__}") from error
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> list[Any]:
    """pyspf's DNSLookup, on the resolver of the check under way."""
    resolver = _RESOLVER.get(None) or dns.resolver.get_default_resolver()
    try:
        answer = resolver.resolve(name, qtype, lifetime=min(timeout, resolver.lifetime))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
        raise spf.TempError(f"DNS {error}") from error
    found: list[Any] = []
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


spf.DNSLookup = _spf_lookup


class SelfVerifier:
    """Checks DKIM, SPF and DMARC of a message itself, through `resolver`."""

    def __init__(self, resolver: dns.resolver.Resolver, *, name: str = "gateway") -> None:
        self.resolver = resolver
        self.name = name  # who gave the verdict, as logged

    async def check(self, raw: bytes, mail: InboundMail) -> SenderCheck:
        context = contextvars.copy_context()
        context.run(_RESOLVER.set, self.resolver)
        return await asyncio.to_thread(context.run, self._check, raw, mail)

    def _check(self, raw: bytes, mail: InboundMail) -> SenderCheck:
        from_domain = (mail.sender or "").rpartition("@")[2]
        problems: list[str] = []
        dkim_domains = self._dkim(raw, problems)
        mail_from = mail.envelope.mail_from.strip("<> ").lower()
        spf_result = self._spf(mail, mail_from, problems)
        record: DmarcRecord | None = None
        try:
            record = self._dmarc_record(from_domain)
        except TemporaryDnsError as error:
            problems.append(str(error))
        verdict = dmarc_verdict(
            from_domain, record, dkim_domains, spf_result,
            mail_from.rpartition("@")[2] or mail.envelope.helo.lower(),
            by=self.name, temporary="; ".join(problems) or None,
        )  # fmt: skip
        log.debug("mail_sender_checked", sender=mail.sender, dmarc=verdict.dmarc,
                  reason=verdict.reason)  # fmt: skip
        return verdict

    def _dkim(self, raw: bytes, problems: list[str]) -> list[str]:
        """The `d=` domains of the DKIM signatures that verify."""
        try:
            checker = dkim.DKIM(raw, timeout=int(self.resolver.lifetime) or 5)
        except Exception:  # not a message dkimpy can read: no valid signature
            return []
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
        domains: list[str] = []

        def txt(name: bytes, timeout: int = 5) -> bytes | None:
            try:
                records = _txt(self.resolver, name.decode("ascii", "replace").rstrip("."))
            except TemporaryDnsError as error:
                problems.append(str(error))
                return None
            return records[0].encode() if records else None

        for idx in range(min(count, MAX_SIGNATURES)):
            try:
                if checker.verify(idx=idx, dnsfunc=txt):
                    domains.append(checker.domain.decode("ascii", "replace").lower())
            except Exception:  # a malformed signature or key verifies nothing
                continue
        return domains

    def _spf(self, mail: InboundMail, mail_from: str, problems: list[str]) -> str:
        peer, helo = mail.envelope.peer, mail.envelope.helo
        if not peer:
            return "none"
        try:
            result, _, explanation = spf.query(
                i=peer, s=mail_from, h=helo or "unknown", querytime=float(self.resolver.lifetime)
            ).check()
        except Exception as error:  # pyspf refuses an address it cannot read
            return f"permerror ({type(error).__name__})"
        if result == "temperror":
            problems.append(f"SPF: {explanation}")
        return str(result)

    def _dmarc_record(self, from_domain: str) -> DmarcRecord | None:
        if not from_domain:
            return None
        for domain in policy_domains(from_domain):
            records = [
                r for r in _txt(self.resolver, f"_dmarc.{domain}") if r[:8].lower() == "v=dmarc1"
            ]
            if len(records) == 1:
                return parse_dmarc_record(domain, records[0])
        return None
