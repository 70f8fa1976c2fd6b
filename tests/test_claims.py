"""The registry and the foundation's claims: each check passes, each negative control fails,
and a claim whose control passes is reported as failed."""

import numpy as np
import pytest

from verify.claims import Claim, Context, Outcome, all_claims
from verify.claims import identities, operators, reconstruction

FOUNDATION = identities.CLAIMS + operators.CLAIMS + reconstruction.CLAIMS


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(profile="quick", seed=0, out_dir=tmp_path_factory.mktemp("report"))


@pytest.mark.parametrize("claim", FOUNDATION, ids=lambda c: c.id)
def test_check_passes_and_negative_control_fails(claim, ctx):
    record = claim.run(ctx)
    assert record["status"] == "pass", record["measured"]
    assert record["negative_control"]["status"] == "fail", record["negative_control"]["measured"]


def test_claim_whose_control_passes_is_reported_failed(ctx):
    always = lambda ctx: Outcome("pass", {"x": np.float64(1.0)})  # noqa: E731
    claim = Claim(id="cannot-fail", kind="theorem", statement="s", source="s", threshold="t",
                  tolerance_rationale="r", check=always, negative_control=always,
                  negative_control_description="a control that passes")
    record = claim.run(ctx)
    assert record["status"] == "fail" and "cannot fail" in record["notes"][0]


def test_crashing_check_is_a_failure_not_a_crash(ctx):
    def boom(ctx):
        raise RuntimeError("boom")
    claim = Claim(id="crash", kind="theorem", statement="s", source="s", threshold="t",
                  tolerance_rationale="r", check=boom,
                  negative_control=lambda c: Outcome("fail"), negative_control_description="d")
    record = claim.run(ctx)
    assert record["status"] == "fail" and "boom" in record["measured"]["error"]


def test_registry_ids_unique_and_records_complete():
    claims = all_claims()
    assert len({c.id for c in claims}) == len(claims)
    for c in claims:
        assert not c.id.startswith("registry-import-"), c.id
        assert c.kind in ("theorem", "replication")
        assert c.statement and c.source and c.threshold and c.tolerance_rationale
        assert c.negative_control_description
