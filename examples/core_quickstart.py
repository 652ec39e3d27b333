"""Store a training run's metrics compactly and prove they come back exactly.

    python examples/core_quickstart.py [OUT_DIR]

Generates 100,000 records of the standard cycle workload, quantizes the float
metrics to fixed point, encodes every column, writes one file per column with
its CRC-64 in a manifest, then reads the files back and checks them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from chronoledger import core, workload


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = workload.generate(100_000, "ms")
    ints = {
        "timestamp": cols["timestamp"],
        "loss": core.quantize(cols["loss"]),            # fixed point at 1e-6
        "coherence": core.quantize(cols["coherence"]),
        "seed_state": cols["seed_state"],
    }
    manifest = {}
    for name, values in ints.items():
        data = core.encode_column(values)
        (out_dir / f"{name}.col").write_bytes(data)
        manifest[name] = {"crc64": core.crc64(data), "bytes": len(data)}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))

    for name, meta in manifest.items():
        data = (out_dir / f"{name}.col").read_bytes()
        assert core.crc64(data) == meta["crc64"], f"{name}: checksum mismatch"
        assert np.array_equal(core.decode_column(data), ints[name]), f"{name}: values differ"
        print(f"{name:<10} {meta['bytes'] / 100_000:6.3f} bytes/record, verified")
    loss = core.dequantize(core.decode_column((out_dir / "loss.col").read_bytes()))
    print(f"loss back as floats: first {loss[0]:.6f}, last {loss[-1]:.6f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("quickstart-output"))
