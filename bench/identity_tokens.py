"""What checking who calls costs: the portal's signing and a service's verification of an
identity token (`desk_platform.identity`), beside a same-run baseline that only decodes the
token (base64 and JSON, no signature), printed as ratios.

    uv run python bench/identity_tokens.py [--tokens 5000] [--repeat 3]

Every request that crosses the portal is signed once and verified once per service it calls
(intake, workflow or sla): the figures say what that adds to a request's CPU time. Each round
verifies its tokens with a fresh verifier (every one checked); a last line times a token
verified again, as an API client reusing its token is (remembered: not checked again).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

import jwt

from desk_contracts.identity import Identity
from desk_platform.identity import Signer, Verifier, jwks, new_signing_key

IDENTITY = Identity("anne@acme.example", "Anne Martin", "acme", {"erp-vendor": ("team_lead",)})


async def run(count: int, repeat: int) -> None:
    key = new_signing_key()
    signer = Signer([key])
    document = jwks([key])

    async def published(_source: str) -> dict[str, object]:
        return document

    async def fresh_verifier() -> Verifier:
        verifier = Verifier("bench", "workflow", fetch=published)
        await verifier.key_for(key.kid)  # keys fetched, untimed
        return verifier

    now = datetime.now(UTC)
    tokens = [signer.token(IDENTITY, "workflow", now) for _ in range(count)]

    def per_second(seconds: list[float]) -> str:
        rates = [count / s for s in seconds]
        return f"{statistics.median(rates):>9,.0f}/s ({min(rates):,.0f}-{max(rates):,.0f})"

    sign, verify, decode, again = [], [], [], []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(count):
            signer.token(IDENTITY, "workflow", now)
        sign.append(time.perf_counter() - began)
        verifier = await fresh_verifier()
        began = time.perf_counter()
        for token in tokens:
            await verifier.verify(token)
        verify.append(time.perf_counter() - began)
        began = time.perf_counter()
        for _ in range(count):
            await verifier.verify(tokens[-1])
        again.append(time.perf_counter() - began)
        began = time.perf_counter()
        for token in tokens:
            jwt.decode(token, options={"verify_signature": False})
        decode.append(time.perf_counter() - began)
    base = statistics.median(decode)
    print(f"tokens: {count}, rounds: {repeat} (median, min-max)")
    print(f"baseline: decode only (no signature)   {per_second(decode)}")
    print(f"portal:   sign (EdDSA)                 {per_second(sign)}  "
          f"{statistics.median(sign) / base:.1f}x the baseline's time")  # fmt: skip
    print(f"service:  verify (signature, claims)   {per_second(verify)}  "
          f"{statistics.median(verify) / base:.1f}x the baseline's time")  # fmt: skip
    print(f"service:  verify a remembered token    {per_second(again)}  "
          f"{statistics.median(again) / base:.2f}x the baseline's time")  # fmt: skip
    per_request = (statistics.median(sign) + statistics.median(verify)) / count * 1e6
    print(f"one signed call: {per_request:.0f} µs of CPU (sign + verify)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.tokens, args.repeat))


if __name__ == "__main__":
    main()
