"""The claim registry: every claim module lists its claims in a module-level ``CLAIMS``.

To add claims, write ``verify/claims/<topic>.py`` defining ``CLAIMS: list[Claim]`` and add
the module name to ``MODULES`` below (one line per module).
"""

from __future__ import annotations

import importlib

from verify.claims.base import Claim, Context, Control, Outcome, status_from

MODULES = [
    "identities",
    "operators",
    "certified",
    "reconstruction",
    "rademacher",
    "pairing",
    "pooling",
    "invariance",
    "table",
]


def all_claims() -> list[Claim]:
    """Every registered claim, in registry order; ids are unique."""
    claims: list[Claim] = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"verify.claims.{name}")
        except Exception as exc:  # noqa: BLE001 - a broken module is a failed claim, not a crash
            claims.append(_broken_module(name, exc))
            continue
        claims.extend(module.CLAIMS)
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuntimeError(f"duplicate claim ids in the registry: {dupes}")
    return claims


def _broken_module(name: str, exc: Exception) -> Claim:
    """A theorem claim that is always ``error`` and carries the import error of a claim module."""
    message = f"{type(exc).__name__}: {exc}"

    def fail(ctx: Context) -> Outcome:
        return Outcome("error", {"error": f"verify.claims.{name} could not be imported: {message}"})

    return Claim(id=f"registry-import-{name}", kind="theorem",
                 statement=f"the claim module verify.claims.{name} imports",
                 source="registry", threshold="imports", tolerance_rationale="n/a",
                 check=fail, negative_control=fail, docs="howto/verify.md#adding-a-claim",
                 negative_control_description="n/a: the module did not import")


__all__ = ["Claim", "Context", "Control", "Outcome", "all_claims", "status_from", "MODULES"]
