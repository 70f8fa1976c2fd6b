"""The registry, the runner's semantics, and the foundation's claims: each check passes,
each negative control fails; a claim whose control passes, is inconclusive or raises is not
reported as passing; a replication claim's planted controls decide whether its check could
tell."""

import numpy as np
import pytest

from verify.claims import Claim, Context, Outcome, all_claims
from verify.claims import certified, identities, operators, reconstruction
from verify.claims.base import verdict

FOUNDATION = identities.CLAIMS + operators.CLAIMS + certified.CLAIMS + reconstruction.CLAIMS


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(profile="quick", seed=0, out_dir=tmp_path_factory.mktemp("report"))


@pytest.mark.parametrize("claim", FOUNDATION, ids=lambda c: c.id)
def test_check_passes_and_negative_control_fails(claim, ctx):
    record = claim.run(ctx)
    assert record["status"] == "pass", record["measured"]
    assert record["negative_control"]["status"] == "fail", record["negative_control"]["measured"]
    assert record["controls"] == [{"kind": "negative", **record["negative_control"]}]
    if claim.id == "prop21-random-banks":   # the ReLU control fails on every solver
        _every_case(record, {"fft", "dense", "lsmr", "cgls"})


def _every_case(record, solvers):
    """Every case of the check passes and every case of the negative control fails, on each
    of ``solvers`` (by its name's prefix)."""
    cases = record["measured"]["cases"]
    control = record["negative_control"]["measured"]["cases"]
    assert all(c["pass"] for c in cases)
    assert not any(c["pass"] for c in control)
    for c in control:   # failed on the residual, not merely on the error
        assert c["relative_residual"] > c["residual_tolerance"], c
    assert {s for s in solvers if any(c["solver"].startswith(s) for c in control)} == solvers


def test_maxpool_wrong_switches_fail_on_every_solver(ctx):
    from verify.claims import pooling

    claim = next(c for c in pooling.CLAIMS if c.id == "maxpool-exact-recovery")
    record = claim.run(ctx)
    assert record["status"] == "pass"
    _every_case(record, {"dense", "lsmr", "cgls"})


def _outcome(status):
    def run(ctx):
        return Outcome(status, {"x": np.float64(1.0)})
    return run


def _boom(ctx):
    raise RuntimeError("boom")


def _theorem(check, control):
    return Claim(id="t", kind="theorem", statement="s", source="s", threshold="t",
                 tolerance_rationale="r", check=check, negative_control=control,
                 negative_control_description="a control")


def _replication(check, positive, null):
    return Claim(id="r", kind="replication", statement="s", source="s", threshold="t",
                 tolerance_rationale="r", check=check, planted_positive=positive,
                 planted_positive_description="effect built in", planted_null=null,
                 planted_null_description="no effect")


def test_claim_whose_control_passes_is_reported_failed(ctx):
    record = _theorem(_outcome("pass"), _outcome("pass")).run(ctx)
    assert record["status"] == "fail" and "cannot fail" in record["notes"][0]


@pytest.mark.parametrize("control", [_outcome("inconclusive"), _boom],
                         ids=["inconclusive", "raises"])
def test_theorem_whose_control_is_inconclusive_or_raises_is_error(ctx, control):
    record = _theorem(_outcome("pass"), control).run(ctx)
    assert record["status"] == "error", record
    assert record["controls"][0]["status"] in ("inconclusive", "error")
    assert record["notes"]


def test_crashing_check_is_an_error_not_a_crash(ctx):
    record = _theorem(_boom, _outcome("fail")).run(ctx)
    assert record["status"] == "error" and "boom" in record["measured"]["error"]
    assert record["notes"][0].startswith("check raised: RuntimeError: boom")


def test_a_theorem_check_cannot_be_inconclusive(ctx):
    assert _theorem(_outcome("inconclusive"), _outcome("fail")).run(ctx)["status"] == "error"


@pytest.mark.parametrize("status", ["pass", "fail", "inconclusive"])
def test_replication_with_working_controls_reports_its_check(ctx, status):
    record = _replication(_outcome(status), _outcome("pass"), _outcome("fail")).run(ctx)
    assert record["status"] == status and record["notes"] == []
    assert [c["kind"] for c in record["controls"]] == ["planted_positive", "planted_null"]
    assert [c["expected"] for c in record["controls"]] == ["pass", "not pass"]
    assert "negative_control" not in record
    # an inconclusive planted null is as good as a failing one: it did not pass
    assert _replication(_outcome(status), _outcome("pass"),
                        _outcome("inconclusive")).run(ctx)["status"] == status


@pytest.mark.parametrize("positive", [_outcome("fail"), _outcome("inconclusive"), _boom],
                         ids=["fail", "inconclusive", "raises"])
def test_planted_positive_that_does_not_pass_makes_an_error(ctx, positive):
    record = _replication(_outcome("pass"), positive, _outcome("fail")).run(ctx)
    assert record["status"] == "error", record
    assert any("planted positive" in n for n in record["notes"])


@pytest.mark.parametrize("null", [_outcome("pass"), _boom], ids=["pass", "raises"])
def test_planted_null_that_passes_or_raises_makes_an_error(ctx, null):
    record = _replication(_outcome("pass"), _outcome("pass"), null).run(ctx)
    assert record["status"] == "error", record
    assert any("planted null" in n for n in record["notes"])


def test_verdict_unknown_status_is_an_error():
    from verify.claims.base import Control

    control = Control("negative", "d", _outcome("fail"))
    status, notes = verdict("theorem", Outcome("maybe"), [(control, "fail")])
    assert status == "error" and "unknown status" in notes[0]


def test_claims_must_have_the_controls_of_their_kind():
    with pytest.raises(ValueError, match="needs a negative_control"):
        Claim(id="t", kind="theorem", statement="s", source="s", threshold="t",
              tolerance_rationale="r", check=_outcome("pass"))
    with pytest.raises(ValueError, match="needs planted_positive and planted_null"):
        Claim(id="r", kind="replication", statement="s", source="s", threshold="t",
              tolerance_rationale="r", check=_outcome("pass"),
              negative_control=_outcome("fail"), negative_control_description="d")
    with pytest.raises(ValueError, match="needs planted_null"):
        Claim(id="r", kind="replication", statement="s", source="s", threshold="t",
              tolerance_rationale="r", check=_outcome("pass"),
              planted_positive=_outcome("pass"), planted_positive_description="p")


def test_registry_ids_unique_and_records_complete():
    claims = all_claims()
    assert len({c.id for c in claims}) == len(claims)
    for c in claims:
        assert not c.id.startswith("registry-import-"), c.id
        assert c.kind in ("theorem", "replication")
        assert c.statement and c.source and c.threshold and c.tolerance_rationale
        kinds = [k.kind for k in c.controls]
        assert kinds == (["negative"] if c.kind == "theorem"
                         else ["planted_positive", "planted_null"]), c.id
        assert all(k.description for k in c.controls), c.id


def test_no_control_is_the_check_against_itself():
    """Every replication control names what it plants: no 'against itself' comparison (whose
    difference is exactly 0, so that it can never pass) is left."""
    for c in all_claims():
        for k in c.controls:
            for phrase in ("against itself", "compared with itself", "seeds reversed"):
                assert phrase not in k.description, (c.id, k.description)


def test_a_broken_claim_module_is_an_error_claim(monkeypatch, tmp_path):
    import importlib

    from verify import claims as registry

    real = importlib.import_module

    def fake(name, *args):
        if name == "verify.claims.table":
            raise ImportError("planted")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    broken = [c for c in registry.all_claims() if c.id == "registry-import-table"]
    assert broken, "the import error became no claim"
    record = broken[0].run(Context(profile="quick", seed=0, out_dir=tmp_path))
    assert record["status"] == "error" and "planted" in record["measured"]["error"]
