"""The exception hierarchy promised in DESIGN.md."""

import pytest

from chronoledger import errors


@pytest.mark.parametrize("cls,parents", [
    (errors.CorruptDataError, (errors.ChronoledgerError, ValueError)),
    (errors.ChecksumError, (errors.CorruptDataError,)),
    (errors.TruncatedError, (errors.CorruptDataError,)),
    (errors.OrderError, (errors.ChronoledgerError,)),
    (errors.QuantizationError, (errors.ChronoledgerError, ValueError)),
    (errors.SchemaError, (errors.ChronoledgerError,)),
    (errors.ValidationError, (errors.ChronoledgerError,)),
    (errors.ConfigError, (errors.ChronoledgerError,)),
    (errors.QueryError, (errors.ChronoledgerError,)),
])
def test_hierarchy(cls, parents):
    for parent in parents:
        assert issubclass(cls, parent)


def test_corrupt_data_carries_the_offset():
    exc = errors.ChecksumError("block 3: CRC mismatch", offset=4096)
    assert exc.offset == 4096 and "CRC" in str(exc)
