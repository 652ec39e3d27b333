"""A training loop that records itself with chronoledger.Run, crashes, and resumes.

    python examples/train_loop.py [FOLDER]       (default: train_loop_out)

Linear regression by minibatch SGD in plain numpy, seeded: every step draws its
batch from its own seed, so a resumed run logs what an uninterrupted one would.
The first attempt crashes at step 130 (simulated); the second resumes from the
checkpoint of step 99 with Run(..., resume=True, rewind=99), which drops the
records logged after it (the rewind is kept in the run's history). Then the run
is plotted (FOLDER/loss.png) and exported to TensorBoard (FOLDER/tb), whose own
reader reads it back. Needs the plot and tensorboard extras:
pip install 'chronoledger[plot,tensorboard]'.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import chronoledger as cl
from chronoledger.chronicle.plot import plot_runs
from chronoledger.chronicle.tensorboard import export_tensorboard

STEPS, CHECKPOINT_EVERY, CRASH_AT = 200, 50, 130
CONFIG = {"name": "linear-sgd", "lr": 0.05, "batch": 32, "features": 8, "seed": 0}


class SimulatedCrash(RuntimeError):
    """What a killed job, a full disk or a NaN assertion would be."""


def train(folder: Path, crash_at: int | None = None) -> None:
    ckpt, data = folder / "checkpoint.npz", np.random.default_rng(CONFIG["seed"])
    w_true, x_val = data.normal(size=8), data.normal(size=(256, 8))
    if ckpt.exists():                                     # resume: weights and step of the last checkpoint
        saved = np.load(ckpt)
        w, start = saved["w"], int(saved["step"]) + 1
        run = cl.Run(folder / "run.cmeta", CONFIG, resume=True, rewind=start - 1)
    else:
        w, start = np.zeros(8), 0
        run = cl.Run(folder / "run.cmeta", CONFIG, overwrite=True)
    with run:
        for step in range(start, STEPS):
            if step == crash_at:
                raise SimulatedCrash(f"simulated crash at step {step}")
            seed = CONFIG["seed"] * 1_000_003 + step      # the step's batch comes from its own seed
            batch = np.random.default_rng(seed)
            x = batch.normal(size=(CONFIG["batch"], 8))
            err = x @ w - (x @ w_true + batch.normal(scale=0.1, size=CONFIG["batch"]))
            grad = x.T @ err / len(err)
            w = w - CONFIG["lr"] * grad
            run.log({"loss": np.mean(err ** 2), "grad_norm": np.linalg.norm(grad)}, step=step, seed=seed)
            if step % 10 == 0:                            # evaluation: merged into the same step's record
                run.log({"val_loss": np.mean((x_val @ (w - w_true)) ** 2)}, step=step)
            if (step + 1) % CHECKPOINT_EVERY == 0:        # checkpoint after the step: written atomically
                with open(ckpt.with_suffix(".tmp"), "wb") as fh:
                    np.savez(fh, w=w, step=step)
                os.replace(ckpt.with_suffix(".tmp"), ckpt)


def main(folder: str | os.PathLike[str] = "train_loop_out") -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoint.npz").unlink(missing_ok=True)      # a fresh start: a new run, overwriting an old one
    try:
        train(out, crash_at=CRASH_AT)
    except SimulatedCrash as exc:
        print(f"{exc}; resuming from the last checkpoint")
    train(out)
    with cl.Chronicle.open(out / "run.cmeta") as ch:
        print(f"{len(ch)} records, steps {ch.last_timestamp + 1 - len(ch)}..{ch.last_timestamp}; "
              f"history: {[(e['op'], e.get('to'), e.get('dropped')) for e in ch.history]}")
    plot_runs([out / "run.cmeta"], ["loss_value", "metrics.val_loss"], out / "loss.png", log_y=True)
    export_tensorboard(out / "run.cmeta", out / "tb", force=True)
    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    loss = acc.Scalars("train/loss_value")
    print(f"TensorBoard reads train/loss_value at {len(loss)} steps ({loss[0].step}..{loss[-1].step}); "
          f"wrote {out / 'loss.png'}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
