"""Trust scores from declared factors, and contradictions kept as rows
(docs/tables.md, "Trust scores" and "Contradictions")."""

import json

import pytest

from chronoledger.cli import cli
from chronoledger.errors import NotFoundError, SchemaError
from chronoledger.tables import TableRegistry
from chronoledger.tables.schema import parse_schema

from _cli import invoke

AS_OF = "2025-06-01T00:00:00Z"

NOTES = {
    "table": "notes", "nullable_rule": "chronoledger",
    "fields": [{"name": "id", "type": "integer", "primary_key": True},
               {"name": "title", "type": "string", "required": True},
               {"name": "summary", "type": "text"},
               {"name": "topic", "type": "string"},
               {"name": "answer", "type": "json"},
               {"name": "created_by", "type": "string"},
               {"name": "updated_at", "type": "datetime"},
               {"name": "successful_uses", "type": "integer", "default": 0},
               {"name": "total_uses", "type": "integer", "default": 0},
               {"name": "trust_score", "type": "float"}],
    "contradictions": [
        {"name": "same_note", "kind": "near_duplicate", "fields": ["title", "summary"], "threshold": 0.8,
         "severity": "high"},
        {"name": "two_answers", "kind": "conflicting_values", "key": ["topic"], "fields": ["answer"],
         "severity": "critical"}],
    "trust": {"weights": {"completeness": 1, "source": 1, "freshness": 1, "usage": 1, "consistency": 1},
              "sources": {"lab": 0.95}},
}


@pytest.fixture
def reg(tmp_path):
    with TableRegistry(tmp_path / "q.db", [], catalogue=False, events_log=None) as r:
        r.propose_schema(NOTES)
        yield r


def _notes(reg):
    reg.insert_rows("notes", [
        {"id": 1, "title": "Reset the pool", "summary": "restart the db pool when it hangs", "topic": "pool",
         "answer": {"do": "restart"}, "created_by": "lab", "updated_at": "2025-05-31T12:00:00Z",
         "successful_uses": 3, "total_uses": 4},
        {"id": 2, "title": "reset the pool", "summary": "Restart the DB pool when it hangs", "topic": "pool",
         "answer": {"do": "drain"}},
        {"id": 3, "title": "Rotate keys", "summary": "rotate the API keys monthly", "topic": "keys",
         "answer": {"do": "rotate"}, "updated_at": "2024-01-01T00:00:00Z"},
    ])


def test_contradictions_are_found_by_the_declared_rules_and_kept(reg):
    _notes(reg)
    run = reg.detect_contradictions("notes")
    assert (run["rules"], run["found"], run["new"]) == (["same_note", "two_answers"], 2, 2)
    found = {c["rule"]: c for c in run["open"]}
    assert (found["same_note"]["row1"], found["same_note"]["row2"], found["same_note"]["score"]) == ("1", "2", 1.0)
    assert found["two_answers"]["detail"] == "same topic, different answer"
    # found again: nothing new; the same rows
    again = reg.detect_contradictions("notes")
    assert (again["new"], again["resolved"], [c["id"] for c in again["open"]]) == (0, 0, [c["id"] for c in run["open"]])
    # the data changes: the pair no longer found is resolved, not deleted
    reg.update_rows("notes", {"id": 2}, {"answer": {"do": "restart"}})
    after = reg.detect_contradictions("notes")
    assert after["resolved"] == 1 and [c["rule"] for c in after["open"]] == ["same_note"]
    resolved = reg.contradictions("notes", status="resolved")
    assert [(c["rule"], c["closed_by"]) for c in resolved] == [("two_answers", "registry (no longer found)")]
    # and it opens again when the data says it again
    reg.update_rows("notes", {"id": 2}, {"answer": {"do": "drain"}})
    assert reg.detect_contradictions("notes")["reopened"] == 1
    assert len(reg.contradictions("notes")) == 2


def test_a_dismissed_contradiction_stays_dismissed(reg):
    _notes(reg)
    cid = reg.detect_contradictions("notes")["open"][0]["id"]
    c = reg.dismiss_contradiction(cid, by="alice", reason="two editions")
    assert (c["status"], c["closed_by"]) == ("dismissed", "alice: two editions")
    assert reg.detect_contradictions("notes")["new"] == 0
    assert [x["id"] for x in reg.contradictions("notes", status="dismissed")] == [cid]
    with pytest.raises(NotFoundError):
        reg.dismiss_contradiction(999)


def test_trust_from_declared_factors_is_deterministic(reg):
    _notes(reg)
    reg.detect_contradictions("notes")
    assert reg.recompute_trust("notes", as_of=AS_OF) == 3
    first = {r["id"]: r["trust_score"] for r in reg.query_rows("notes")}
    assert reg.recompute_trust("notes", as_of=AS_OF) == 3
    assert {r["id"]: r["trust_score"] for r in reg.query_rows("notes")} == first
    ex = reg.explain_trust("notes", 1, as_of=AS_OF)
    f = {k: v["value"] for k, v in ex["factors"].items()}
    # the required title and all 7 others (summary, topic, answer, created_by, updated_at, the two counts;
    # trust_score itself is not counted) are filled
    assert f["completeness"] == 1.0
    two = reg.explain_trust("notes", 2, as_of=AS_OF)["factors"]
    assert two["completeness"]["value"] == pytest.approx(0.6 + 0.4 * 5 / 7)     # no created_by, updated_at
    assert f["source"] == 0.95                                    # declared for "lab"
    assert f["freshness"] == 1.0                                  # 12 hours before as_of
    assert f["usage"] == pytest.approx(4 / 6)                     # Laplace over 3 of 4
    assert f["consistency"] == pytest.approx(1 - 0.30 - 0.50)     # one high, one critical, open
    assert all(v["weight"] == pytest.approx(0.2) for v in ex["factors"].values())
    assert first[1] == ex["trust_score"] == pytest.approx(sum(f.values()) / 5, abs=1e-6)
    three = reg.explain_trust("notes", 3, as_of=AS_OF)["factors"]
    assert three["freshness"]["value"] == 0.3 and three["source"]["value"] == 0.5     # old; no creator
    assert three["consistency"]["value"] == 1.0
    # dismissing the contradictions gives row 1 its consistency back
    for c in reg.contradictions("notes", status="open"):
        reg.dismiss_contradiction(c["id"])
    assert reg.explain_trust("notes", 1, as_of=AS_OF)["factors"]["consistency"]["value"] == 1.0
    # a later as_of makes the same row less fresh
    assert reg.explain_trust("notes", 1, as_of="2025-07-15T00:00:00Z")["factors"]["freshness"]["value"] == 0.7


def test_graces_tables_get_graces_rules(tmp_path):
    with TableRegistry(tmp_path / "c.db", events_log=None) as reg:       # the catalogue: memory_documents
        reg.load_all_schemas()
        reg.insert_rows("memory_documents", [
            {"source_path": "a.pdf", "title": "Annual report 2024", "summary": "the yearly numbers"},
            {"source_path": "b.pdf", "title": "annual report 2024", "summary": "The yearly numbers"},
            {"source_path": "c.pdf", "title": "Field guide", "summary": "birds"}])
        run = reg.detect_contradictions("memory_documents")
        assert run["rules"] == ["duplicate_content"] and run["found"] == 1
        assert run["open"][0]["severity"] == "medium"
        assert reg.detect_contradictions("memory_media")["rules"] == []


def test_rules_and_weights_are_checked():
    bad = dict(NOTES, contradictions=[{"name": "x", "kind": "near_duplicate", "fields": ["nope"]},
                                      {"name": "y", "kind": "conflicting_values", "fields": ["answer"]},
                                      {"name": "z", "fields": ["title"], "severity": "dire", "threshold": 2}],
               trust={"weights": {"luck": 1}, "source_field": "nope"})
    schema, problems = parse_schema(bad, "bad.yaml")
    text = "\n".join(map(str, problems))
    assert schema is None
    for expected in ["contradictions[0]: fields: 'nope' is not a field of this table",
                     "contradictions[1]: key: a conflicting_values rule names the fields",
                     "contradictions[2]: threshold: a similarity above 0 and at most 1",
                     "contradictions[2]: severity: 'dire' must be one of low, medium, high, critical",
                     "trust.weights: a mapping of factors", "trust.source_field: 'nope' is not a field"]:
        assert expected in text


def test_changing_rules_is_a_low_risk_change(reg):
    changed = dict(NOTES, contradictions=NOTES["contradictions"][:1])
    p = reg.propose_schema(changed)
    assert (p["status"], [c["kind"] for c in p["changes"]]) == ("applied", ["rules"])
    assert [r["name"] for r in reg.schema("notes").contradictions] == ["same_note"]


def test_a_table_without_trust_score_has_no_trust(reg):
    reg.propose_schema({"table": "plain", "fields": [{"name": "v", "type": "string", "nullable": True}]})
    with pytest.raises(SchemaError, match="declares no trust_score"):
        reg.recompute_trust("plain")


def test_cli_trust_and_contradictions(tmp_path):
    db = tmp_path / "q.db"
    with TableRegistry(db, [], catalogue=False, events_log=None) as reg:
        reg.propose_schema(NOTES)
        _notes(reg)
    base = ["tables", "--db", str(db)]
    r = invoke(cli, base + ["contradictions", "notes"])
    assert r.exit_code == 0, r.output
    assert "2 found, 2 new" in r.stdout and "same_note" in r.stdout and "two_answers" in r.stdout
    r = invoke(cli, base + ["contradictions", "notes", "--no-detect", "--json"])
    ids = [c["id"] for c in json.loads(r.stdout)]
    assert len(ids) == 2
    r = invoke(cli, base + ["trust", "notes", "--as-of", AS_OF])
    assert r.exit_code == 0 and "3 trust scores recomputed" in r.stdout
    r = invoke(cli, base + ["trust", "notes", "--explain", "1", "--as-of", AS_OF, "--json"])
    ex = json.loads(r.stdout)
    assert ex["key"] == 1 and set(ex["factors"]) == {"completeness", "source", "freshness", "usage", "consistency"}
    r = invoke(cli, base + ["--actor", "bob", "dismiss", str(ids[0]), "--reason", "fine"])
    assert r.exit_code == 0 and "dismissed by bob: fine" in r.stdout
    r = invoke(cli, base + ["trust", "notes", "--as-of", "not a time"])
    assert r.exit_code == 2 and "as_of" in r.output


def test_near_duplicates_are_found_exactly_as_comparing_every_pair():
    """Prefix filtering leaves out no pair a full comparison finds."""
    import random
    from itertools import combinations

    from chronoledger.tables import contradictions

    rnd = random.Random(5)
    vocab = [f"w{i}" for i in range(30)]
    rows = [{"id": i, "a": " ".join(rnd.choices(vocab, k=rnd.randint(0, 8))),
             "b": " ".join(rnd.choices(vocab[:10], k=rnd.randint(1, 4))) if rnd.random() < 0.7 else None}
            for i in range(300)]
    for threshold in (0.3, 0.5, 0.85, 1.0):
        rule = {"name": "r", "kind": "near_duplicate", "fields": ["a", "b"], "threshold": threshold,
                "severity": "low"}
        found = {(f.row1, f.row2) for f in contradictions.detect(rows, "id", [rule])}
        brute = set()
        for x, y in combinations(rows, 2):
            sims = []
            for f in ("a", "b"):
                wa = set(x[f].lower().split()) if x[f] else set()
                wb = set(y[f].lower().split()) if y[f] else set()
                if wa and wb:
                    sims.append(len(wa & wb) / len(wa | wb))
            if sims and sum(sims) / len(sims) >= threshold:
                brute.add(tuple(sorted((str(x["id"]), str(y["id"])))))
        assert found == brute and (threshold == 1.0 or brute), threshold


# --- found in review -------------------------------------------------------------------

def test_recomputing_trust_is_not_an_update_of_the_row(reg):
    """A generated updated_at is a freshness input: recomputing must not touch it."""
    reg.propose_schema({"table": "kept", "nullable_rule": "chronoledger", "fields": [
        {"name": "id", "type": "integer", "primary_key": True},
        {"name": "updated_at", "type": "datetime", "generated": "update"},
        {"name": "trust_score", "type": "float"}]})
    reg.insert_row("kept", {"id": 1})
    reg.update_rows("kept", {"id": 1}, {"trust_score": 0.1})
    stamp = reg.get_row("kept", 1)["updated_at"]
    later = "2099-01-01T00:00:00Z"
    reg.recompute_trust("kept", as_of=later)
    first = reg.get_row("kept", 1)
    reg.recompute_trust("kept", as_of=later)
    assert reg.get_row("kept", 1) == first and first["updated_at"] == stamp


def test_an_approved_stamp_counts_before_the_creator(reg):
    reg.propose_schema({"table": "stamped", "nullable_rule": "chronoledger", "fields": [
        {"name": "id", "type": "integer", "primary_key": True}, {"name": "created_by", "type": "string"},
        {"name": "governance_stamp", "type": "json"}, {"name": "trust_score", "type": "float"}]})
    reg.insert_rows("stamped", [{"id": 1, "created_by": "user", "governance_stamp": {"approved": True}},
                                {"id": 2, "created_by": "user"}])
    assert reg.explain_trust("stamped", 1)["factors"]["source"]["value"] == 0.9
    assert reg.explain_trust("stamped", 2)["factors"]["source"]["value"] == 0.6


@pytest.mark.parametrize("block", [{"source_field": ["x"]}, {"freshness_field": {"a": 1}}, {"weights": [1]},
                                   {"sources": {"lab": "high"}}, "all of them"])
def test_a_trust_block_that_is_not_what_it_should_be_is_a_schema_problem(block):
    schema, problems = parse_schema(dict(NOTES, trust=block), "t.yaml")
    assert schema is None and any("trust" in str(p) for p in problems)


def test_contradiction_calls_refuse_what_they_cannot_take(reg):
    from chronoledger.errors import QueryError

    _notes(reg)
    cid = reg.detect_contradictions("notes")["open"][0]["id"]
    for bad in ("1", [1], True, 1.0):
        with pytest.raises(QueryError, match="a contradiction id is an integer"):
            reg.dismiss_contradiction(bad)
    with pytest.raises(QueryError, match="by and reason are text"):
        reg.dismiss_contradiction(cid, by=5)
    assert reg.contradictions("notes", status="dismissed") == []          # nothing was dismissed
    with pytest.raises(NotFoundError, match="no table 'nope'"):
        reg.contradictions("nope")
    with pytest.raises(QueryError):
        reg.contradictions([1])
