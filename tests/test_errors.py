"""The exception hierarchy promised in DESIGN.md, and the one status table."""

import errno
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

from chronoledger import _fsutil, errors


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


@pytest.mark.parametrize("cls,parents", [
    (errors.FieldValueError, (errors.ValidationError, ValueError)),
    (errors.NotFoundError, (errors.ValidationError,)),
    (errors.StorageError, (errors.ChronoledgerError, OSError)),
    (errors.DatabaseBusyError, (errors.ChronoledgerError,)),
    (errors.WriterLockedError, (errors.ChronoledgerError,)),
    (errors.ModelError, (errors.ChronoledgerError,)),
    (errors.ReplayMismatch, (errors.CorruptDataError,)),
    (errors.StepError, (errors.ConfigError, ValueError)),
    (errors.UnsupportedError, (errors.ChronoledgerError,)),
    (errors.MissingDependencyError, (errors.UnsupportedError, ImportError)),
])
def test_hierarchy_of_the_store_and_simulation_errors(cls, parents):
    for parent in parents:
        assert issubclass(cls, parent)


def test_every_class_in_all_is_a_chronoledger_error():
    classes = [getattr(errors, name) for name in errors.__all__ if inspect.isclass(getattr(errors, name))]
    assert len(classes) == len(errors.__all__) - 1              # and status_error
    for cls in classes:
        assert issubclass(cls, errors.ChronoledgerError), cls
    # and every exception class errors.py defines is listed
    defined = {n for n, o in vars(errors).items() if inspect.isclass(o) and issubclass(o, BaseException)
               and o.__module__ == errors.__name__ and not n.startswith("_")}
    assert defined == {c.__name__ for c in classes}


def _public_modules():
    import chronoledger

    for info in pkgutil.walk_packages(chronoledger.__path__, "chronoledger."):
        parts = info.name.split(".")
        # private modules (_core, _yamlread...) keep their own helpers; __main__ runs the CLI on import
        if any(p.startswith("_") for p in parts[1:]):
            continue
        yield importlib.import_module(info.name)


def test_every_public_exception_of_the_package_is_in_errors():
    """An exception class with a public name in a public module is one of
    errors.__all__: defined in errors.py (a module may re-export it, as the
    same object), never defined anywhere else."""
    found = {}
    for module in _public_modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and not name.startswith("_") \
                    and obj.__module__.startswith("chronoledger"):
                found[f"{module.__name__}.{name}"] = obj
    assert "chronoledger.sqlite.DatabaseBusyError" in found           # the walk does reach the stores
    strays = {where: f"{obj.__module__}.{obj.__qualname__}" for where, obj in found.items()
              if obj.__module__ != errors.__name__ or obj.__name__ not in errors.__all__}
    assert not strays, f"public exceptions defined outside chronoledger.errors (or not in its __all__): {strays}"


@pytest.mark.parametrize("module, name, new", [
    ("chronoledger.sqlite", "DatabaseBusyError", "DatabaseBusyError"),
    ("chronoledger.chronicle.writer", "WriterLockedError", "WriterLockedError"),
    ("chronoledger.chronicle", "WriterLockedError", "WriterLockedError"),
    ("chronoledger.world.models", "ModelError", "ModelError"),
    ("chronoledger.world.replay", "ReplayMismatch", "ReplayMismatch"),
    ("chronoledger.tables.values", "Bad", "FieldValueError"),
])
def test_moved_classes_are_importable_from_their_old_places_as_the_same_objects(module, name, new):
    old = getattr(importlib.import_module(module), name)
    assert old is getattr(errors, new)
    ns: dict = {}
    exec(f"from {module} import {name} as cls", ns)                # the old import line keeps working
    assert ns["cls"] is getattr(errors, new)


def test_a_value_a_field_cannot_hold_is_a_validation_error():
    from chronoledger.tables import values

    with pytest.raises(errors.FieldValueError, match="is not a UUID") as info:
        values.coerce("uuid", "nope")
    assert isinstance(info.value, errors.ValidationError) and isinstance(info.value, ValueError)


# --- kernel status -> exception: the one table ------------------------------------------

def _header_codes() -> dict[str, int]:
    header = Path(__file__).resolve().parent.parent / "native" / "cl_status.h"
    if not header.exists():
        pytest.skip("native/cl_status.h is not here (an installed package without its sources)")
    return {m[1]: int(m[2]) for m in re.finditer(r"\bCL_(\w+)\s*=\s*(\d+)", header.read_text())}


def test_the_status_table_has_the_codes_of_cl_status_h():
    codes = _header_codes()
    assert {n: c for n, c in codes.items() if n.startswith("ERR_")} == {
        "ERR_NOMEM": 1, "ERR_ARG": 2, "ERR_RANGE": 3, "ERR_CORRUPT": 4, "ERR_TRUNCATED": 5, "ERR_ORDER": 6,
        "ERR_UNSUPPORTED": 7, "ERR_SMALL": 8, "ERR_SQLITE": 9}
    assert set(errors._STATUS) == set(range(1, codes["STATUS_COUNT"]))      # every error code, and no other


@pytest.mark.parametrize("status, cls", [
    (1, MemoryError), (2, ValueError), (3, errors.QuantizationError), (4, errors.CorruptDataError),
    (5, errors.TruncatedError), (6, errors.OrderError), (7, errors.UnsupportedError), (8, ValueError),
    (9, errors.ChronoledgerError),
])
def test_each_status_is_one_exception_class(status, cls):
    exc = errors.status_error(status, "doing it")
    assert type(exc) is cls
    assert str(exc).startswith("doing it: ") and len(str(exc)) > len("doing it: ")
    assert str(errors.status_error(status, "doing it", "because")) == "doing it: because"


def test_unsupported_is_unsupported_error_and_offsets_are_kept():
    exc = errors.status_error(7, "crc64", "the 'vpclmul' path is not available on this CPU")
    assert isinstance(exc, errors.UnsupportedError) and not isinstance(exc, RuntimeError)
    assert str(exc) == "crc64: the 'vpclmul' path is not available on this CPU"
    assert errors.status_error(5, "decode_column", offset=12).offset == 12
    assert errors.status_error(4, "decode_column", "bad", offset=3).offset == 3
    unknown = errors.status_error(77, "x")
    assert type(unknown) is errors.ChronoledgerError and "unknown status 77" in str(unknown)


def test_the_extensions_raise_through_the_one_table(monkeypatch, tmp_path):
    from chronoledger import _core, _sqlbulk

    calls = []
    real = errors.status_error

    def spy(status, what, why=None, offset=None):
        calls.append(status)
        return real(status, what, why, offset)

    monkeypatch.setattr(errors, "status_error", spy)
    with pytest.raises(ValueError, match="AppendBuffer: invalid argument"):
        _core.AppendBuffer(flush_every=2 ** 62)                   # the kernel refuses the window: CL_ERR_ARG
    assert calls == [2]
    import apsw

    if _sqlbulk.bind():
        conn = apsw.Connection(":memory:")
        with pytest.raises(ValueError, match="not one statement that writes rows"):
            _sqlbulk.insert(conn, "SELECT ?", [[1]], 1)            # CL_ERR_ARG from cl_sqlbulk
        assert calls == [2, 2]
        conn.close()


def test_a_storage_error_says_its_message_once_and_keeps_the_oserror_fields(tmp_path):
    target = tmp_path / "no" / "out.csv"
    with pytest.raises(errors.StorageError) as e:
        with _fsutil.output_file(target, force=False, what="export"):
            pass
    assert str(e.value) == f"export: {target}: the folder {target.parent} does not exist"
    assert e.value.filename == str(target) and e.value.errno == errno.ENOENT
    assert str(errors.StorageError(None, f"export: {target}: failed", str(target))) == f"export: {target}: failed"
    assert str(errors.StorageError("a message alone")) == "a message alone"
