"""ISO-8601 times read the same on every Python the package supports.

Before Python 3.11, ``datetime.fromisoformat`` reads no trailing ``Z`` and
only 3 or 6 digits of a fraction of seconds.  The runtime store, the tables
registry and the sequence sync each normalise time text with ``iso_text``
first (one copy per subsystem, which do not import one another); these tests
check the normalised text itself, and the end results with fromisoformat
restricted to exactly what Python 3.10 reads (the tests run on 3.11 too).
"""

import re
from datetime import datetime, timezone

import pytest

from chronoledger.errors import ValidationError
from chronoledger.runtime import values as runtime_values
from chronoledger.sequence import values as sequence_values
from chronoledger.tables import infer as tables_infer
from chronoledger.tables import publishing as tables_publishing
from chronoledger.tables import quality as tables_quality
from chronoledger.tables import registry as tables_registry
from chronoledger.tables import trust as tables_trust
from chronoledger.tables import values as tables_values

COPIES = [runtime_values, tables_values, sequence_values]

#: the forms Python 3.10's datetime.fromisoformat reads:
#: YYYY-MM-DD[*HH[:MM[:SS[.fff[fff]]]][+HH:MM[:SS[.ffffff]]]]
_PY310 = re.compile(r"\d{4}-\d\d-\d\d(?:.\d\d(?::\d\d(?::\d\d(?:\.\d{3}(?:\d{3})?)?)?)?"
                    r"(?:[+-]\d\d:\d\d(?::\d\d(?:\.\d{6})?)?)?)?\Z", re.S)


class Py310Datetime(datetime):
    """datetime whose fromisoformat refuses what Python 3.10's refuses."""

    @classmethod
    def fromisoformat(cls, text):
        if not isinstance(text, str):
            raise TypeError("fromisoformat: argument must be str")
        if not _PY310.match(text):
            raise ValueError(f"Invalid isoformat string: {text!r}")
        return datetime.fromisoformat(text)


@pytest.fixture
def py310(monkeypatch):
    for module in (runtime_values, tables_values, tables_publishing, tables_quality, tables_trust, tables_infer,
                   sequence_values):
        monkeypatch.setattr(module, "datetime", Py310Datetime)


def test_the_stand_in_refuses_what_python_3_10_refuses():
    for text in ["2025-01-02T03:04:05.5Z", "2025-01-02T03:04Z", "2025-01-02T03:04:05.000000Z",
                 "2025-01-02T03:04:05.1234567", "2025-01-02T03:04:05+0100", "2025-01-02T03:04:05,5"]:
        with pytest.raises(ValueError):
            Py310Datetime.fromisoformat(text)
    for text in ["2025-01-02", "2025-01-02T03", "2025-01-02 03:04:05.123+01:00", "2025-01-02T03:04:05.123456-00:00"]:
        assert Py310Datetime.fromisoformat(text) == datetime.fromisoformat(text)


@pytest.mark.parametrize("module", COPIES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("given, normalised", [
    ("2025-01-02T03:04:05.000000Z", "2025-01-02T03:04:05.000000+00:00"),
    ("2025-01-02T03:04:05.5Z", "2025-01-02T03:04:05.500000+00:00"),
    ("2025-01-02T03:04Z", "2025-01-02T03:04+00:00"),
    ("2025-01-02T03Z", "2025-01-02T03+00:00"),
    ("2026-01-01T00:00:00z", "2026-01-01T00:00:00+00:00"),
    (" 2025-01-02T05:04:05.25+02:00 ", "2025-01-02T05:04:05.250000+02:00"),
    ("2025-01-02 03:04:05,5", "2025-01-02 03:04:05.500000"),
    ("2025-01-02T03:04:05.123456789Z", "2025-01-02T03:04:05.123456+00:00"),    # cut, as 3.11 does
    ("2025-01-02T03:04:05.1234567-0130", "2025-01-02T03:04:05.123456-01:30"),
    ("2025-01-02T03:04+0100", "2025-01-02T03:04+01:00"),
    # left as they are, for fromisoformat to accept or refuse
    ("2025-01-02T03:04:05", "2025-01-02T03:04:05"),
    ("2025-01-02", "2025-01-02"),
    ("2025-01-02T03:04:05.", "2025-01-02T03:04:05."),
    ("2025-01-02T03:04:05.000+01Z", "2025-01-02T03:04:05.000000+01+00:00"),
    ("yesterday", "yesterday"),
])
def test_iso_text_gives_what_every_python_reads(module, given, normalised):
    assert module.iso_text(given) == normalised


@pytest.mark.parametrize("given, stored", [
    ("2025-01-02T03:04:05.5Z", "2025-01-02T03:04:05.500000Z"),
    ("2025-01-02T03:04Z", "2025-01-02T03:04:00.000000Z"),
    ("2025-01-02T03:04:05.000000Z", "2025-01-02T03:04:05.000000Z"),
    ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05.000000Z"),
    ("2025-01-02T05:04:05.25+02:00", "2025-01-02T03:04:05.250000Z"),
    ("2025-01-02T03:04:05.1234567+0100", "2025-01-02T02:04:05.123456Z"),
])
def test_tables_datetimes_read_alike_on_python_3_10(py310, given, stored):
    assert tables_values.coerce("datetime", given) == stored


@pytest.mark.parametrize("bad", ["2025-01-02T03:04:05.000+01Z", "2025-01-02T03:04+01Z", "2025-01-02T03:04:05."])
def test_tables_still_refuses_malformed_times_on_python_3_10(py310, bad):
    with pytest.raises(tables_values.Bad, match="not an ISO-8601"):
        tables_values.coerce("datetime", bad)


def test_the_tables_event_time_reads_the_stored_form_on_python_3_10(py310):
    stored = "2025-01-02T03:04:05.000000Z"            # what the outbox holds (values.now())
    want = int(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp() * 1_000_000)
    assert tables_publishing._micros(stored) == want
    assert tables_publishing._micros(tables_values.now()) > want


def test_a_registry_publishes_its_events_on_python_3_10(py310, tmp_path):
    from chronoledger.chronicle import Chronicle

    with tables_registry.TableRegistry(tmp_path / "n.db", catalogue=False) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
        r.insert_row("t", {"v": 1})
        assert r.publish_events() >= 1 and r.pending_events() == 0
    with Chronicle.open(tmp_path / "n.events.cmeta") as ch:
        assert len(ch) >= 2


@pytest.mark.parametrize("given, stored", [
    ("2025-01-02T03:04:05.5Z", "2025-01-02T03:04:05.500000Z"),
    ("2025-01-02T03:04Z", "2025-01-02T03:04:00.000000Z"),
    ("2025-01-02T03:04:05.000000z", "2025-01-02T03:04:05.000000Z"),
    ("2025-01-02T03:04:05.12+0100", "2025-01-02T02:04:05.120000Z"),
])
def test_runtime_times_read_alike_on_python_3_10(py310, given, stored):
    assert runtime_values.check_time(given, "f") == stored
    assert runtime_values.format_time(runtime_values.parse_time(given)) == stored


def test_runtime_still_refuses_a_time_without_a_zone_on_python_3_10(py310):
    with pytest.raises(ValidationError, match="has no time zone"):
        runtime_values.check_time("2025-01-02T03:04:05.5", "f")
    with pytest.raises(ValidationError, match="is not an ISO-8601 time"):
        runtime_values.check_time("2025-01-02T03:04:05.000+01Z", "f")


def test_sequence_stamps_and_event_times_read_alike_on_python_3_10(py310):
    assert sequence_values.stamp("2026-01-02T06:30:00Z") == "2026-01-02T06:30:00"
    assert sequence_values.stamp("2026-01-02 06:30:00.5") == "2026-01-02T06:30:00"
    assert sequence_values.stamp("2026-01-02T06:30:00.25+01:00") == "2026-01-02T06:30:00"
    want = int(datetime(2026, 1, 2, 6, 30, tzinfo=timezone.utc).timestamp() * 1_000_000)
    assert sequence_values.micros("2026-01-02T06:30:00Z") == want
    assert sequence_values.micros("2026-01-02T06:30:00.5") == want + 500_000


def test_trust_and_inference_read_times_alike_on_python_3_10(py310, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("at\n2025-01-02T03:04:05.5Z\n2025-01-02T03:04Z\n")
    assert [g.type for g in tables_infer.infer_files([f]).fields] == ["datetime"]
    with tables_registry.TableRegistry(tmp_path / "q.db", catalogue=False, events_log=None) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "id", "type": "integer", "primary_key": True},
                                                   {"name": "updated_at", "type": "datetime", "nullable": True},
                                                   {"name": "trust_score", "type": "float", "nullable": True}]})
        r.insert_row("t", {"id": 1, "updated_at": "2025-01-02T03:04:05.5Z"})
        ex = r.explain_trust("t", 1, as_of="2025-01-02T15:04Z")
        assert ex["factors"]["freshness"]["value"] == 1.0 and ex["as_of"] == "2025-01-02T15:04:00.000000Z"
