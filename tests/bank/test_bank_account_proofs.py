"""Account proofs: a visitor's account vouched for to one audience, checkable by the platform
alone, and useless to anyone else or after it expires."""

from __future__ import annotations

import pytest
from bankutil import PLATFORM_KEY, bearer, snapshot

from bank.account_proofs import PROOF_TTL_SECONDS, ProofError, proof_key, verify_proof


async def test_a_proof_names_the_callers_account_for_the_audience(new_visitor, clock):
    alice = await new_visitor("MYR", "Alice")
    proof = await alice.account_proof("vis_alice")
    assert proof.account_id == (await alice.me()).id and proof.audience == "vis_alice"
    now = clock.now_ms() / 1000
    key = proof_key(PLATFORM_KEY)
    assert verify_proof(key, proof.proof, "vis_alice", now) == proof.account_id
    with pytest.raises(ProofError) as other:  # presented by another visitor
        verify_proof(key, proof.proof, "vis_mallory", now)
    assert other.value.code == "proof_invalid"
    with pytest.raises(ProofError) as forged:  # a key that is not the platform's
        verify_proof(proof_key("not-the-platform-key"), proof.proof, "vis_alice", now)
    assert forged.value.code == "proof_invalid"
    with pytest.raises(ProofError) as late:
        verify_proof(key, proof.proof, "vis_alice", now + PROOF_TTL_SECONDS)
    assert late.value.code == "proof_expired"
    tampered = proof.proof.replace(proof.account_id, "acct_someone_else")
    with pytest.raises(ProofError):
        verify_proof(key, tampered, "vis_alice", now)
    with pytest.raises(ProofError) as junk:
        verify_proof(key, "ap1.x", "vis_alice", now)
    assert junk.value.code == "proof_malformed"


async def test_proofs_need_a_visitor_token_and_a_sane_audience_and_change_nothing(http, new_visitor, db_path):
    alice = await new_visitor("MYR", "Alice")
    before = snapshot(db_path)
    anonymous = await http.post("/v1/accounts/me/proofs", json={"audience": "vis_a"})
    assert anonymous.status_code == 401
    platform = await http.post("/v1/accounts/me/proofs", headers=bearer(PLATFORM_KEY), json={"audience": "vis_a"})
    assert (platform.status_code, platform.json()["error"]["code"]) == (403, "forbidden")
    for audience in ("", "has space", "x" * 129, 7):
        bad = await http.post("/v1/accounts/me/proofs", headers=bearer(alice.token), json={"audience": audience})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request"), audience
    assert snapshot(db_path) == before
