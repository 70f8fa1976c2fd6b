"""The claim registry: every claim module lists its claims in a module-level ``CLAIMS``.

To add claims, write ``verify/claims/<topic>.py`` defining ``CLAIMS: list[Claim]`` and add
the module name to ``MODULES`` below (one line per module).
"""

from __future__ import annotations

import importlib

from verify.claims.base import Claim, Context, Outcome, status_from

MODULES = [
    "identities",
    "operators",
    "reconstruction",
]


def all_claims() -> list[Claim]:
    """Every registered claim, in registry order; ids are unique."""
    claims: list[Claim] = []
    for name in MODULES:
        module = importlib.import_module(f"verify.claims.{name}")
        claims.extend(module.CLAIMS)
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuntimeError(f"duplicate claim ids in the registry: {dupes}")
    return claims


__all__ = ["Claim", "Context", "Outcome", "all_claims", "status_from", "MODULES"]
