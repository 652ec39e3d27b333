"""The standard workload generator: deterministic and as specified."""

import numpy as np
import pytest

from chronoledger import workload


def test_same_seed_same_data_and_variants_share_columns():
    a = workload.generate(50_000, "seq")
    b = workload.generate(50_000, "seq")
    c = workload.generate(50_000, "ms")
    for k in a:
        assert np.array_equal(a[k], b[k])
        if k != "timestamp":
            assert np.array_equal(a[k], c[k])
    assert not np.array_equal(a["loss"], workload.generate(50_000, "seq", seed=1)["loss"])


def test_columns_follow_the_specification():
    n = 400_000
    c = workload.generate(n, "ms")
    assert c["timestamp"][0] == workload.MS_TIMESTAMP_BASE
    steps = np.diff(c["timestamp"].astype(np.int64))
    assert steps.min() >= 1 and abs(steps.mean() - 50) < 0.1
    assert np.array_equal(workload.generate(10, "seq")["timestamp"], np.arange(1_000_000, 1_000_010))
    assert c["loss"].dtype == np.float32 and c["loss"].min() >= 0
    assert c["coherence"].min() >= 0 and c["coherence"].max() <= 1
    assert c["tensor_signature"].shape == (n, 3)
    assert np.allclose(c["tensor_signature"][0], workload.TENSOR_START)
    assert abs(c["action_present"].mean() - 0.03) < 0.002
    assert c["action_code"][c["action_present"]].max() <= 15
    phase = c["phase"]
    starts = np.flatnonzero(np.diff(phase)) + 1
    lengths = np.diff(np.concatenate([[0], starts, [n]]))
    codes = phase[np.concatenate([[0], starts])]
    for code, mean in enumerate(workload.PHASE_MEAN_RUN):
        assert abs(lengths[codes == code].mean() - mean) < 0.15 * mean
    assert np.array_equal(codes[:6], [0, 1, 2, 0, 1, 2])


def test_packed_records_are_38_bytes():
    c = workload.generate(1000)
    rec = workload.pack_records(c)
    assert rec.dtype.itemsize == 38 and len(rec.tobytes()) == 38_000
    assert np.all(rec["action_code"][~c["action_present"]] == workload.ACTION_ABSENT)


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        workload.generate(10, "hours")
    with pytest.raises(ValueError, match="n must be"):
        workload.generate(0)
