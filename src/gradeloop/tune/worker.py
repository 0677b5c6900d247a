"""``python -m gradeloop.tune.worker JOB_ID``: train one job in the background.

Started detached by ``create_job`` / ``resume_job`` (it outlives the CLI). It waits for the
training slot of its ``GRADELOOP_HOME`` (one job trains at a time), runs the method's trainer
with a store-backed context, and records the outcome. Output goes to ``jobs/<id>/worker.log``.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
import traceback

from ..redact import scrub_std_streams
from ..store import Store
from ._context import JobContext, StopTraining, TrainingSpec
from ._jobs import StoreContext, refresh_job, training_spec

TRAINERS = {"supervised": "sft", "dpo": "dpo", "reinforcement": "rft"}


def run(job_id: str) -> int:
    """Train ``job_id``; returns the process exit code."""
    store = Store()
    job = store.get_job(job_id)
    if int(os.environ.get("RANK") or 0) > 0:  # a non-main process of a launch: trains, reports only its start
        module = __import__(f"gradeloop.tune.{TRAINERS[job['method']]}", fromlist=["train"])
        try:
            module.train(FollowerContext(store, training_spec(store, job)))
        except StopTraining:
            pass
        return 0
    with open(store.path.parent / "training.lock", "w") as slot:
        fcntl.flock(slot, fcntl.LOCK_EX)  # queued until the previous job releases the slot
        job = refresh_job(store, job_id)
        if job["status"] != "queued" or job["requested"] == "cancel":
            return 0
        store.update_job(job["id"], status="running", started_at=int(time.time()))
        store.add_job_event(job["id"], "Fine-tuning job started")
        spec = training_spec(store, job)
        context = StoreContext(store, spec)
        try:
            module = __import__(f"gradeloop.tune.{TRAINERS[spec.method]}", fromlist=["train"])
            result = module.train(context)
        except StopTraining as stop:
            return _stopped(store, job["id"], stop.reason)
        except Exception as exc:  # noqa: BLE001 - any failure is the job's outcome
            store.add_job_event(job["id"], f"Training failed: {type(exc).__name__}: {exc}", level="error",
                                data={"traceback": traceback.format_exc()[-4000:]})
            store.update_job(job["id"], status="failed", finished_at=int(time.time()), pid=None,
                             error={"code": "training_failed", "message": f"{type(exc).__name__}: {exc}",
                                    "param": None})
            return 1
        if result.stopped:
            return _stopped(store, job["id"], result.stopped)
        name = f"ft:{job['id']}"
        store.update_job(job["id"], status="succeeded", finished_at=int(time.time()), pid=None,
                         fine_tuned_model=name, trained_tokens=result.trained_tokens)
        store.add_job_event(job["id"], f"The job has successfully completed: {name}", data=result.metrics)
    return 0


class FollowerContext(JobContext):
    """The context of a non-main process: the main process reports and decides when to stop;
    this one only says that it started."""

    def __init__(self, store: Store, spec: TrainingSpec) -> None:
        self.store, self.spec = store, spec

    def process_started(self, rank: int, world_size: int) -> None:
        self.store.add_job_event(self.spec.job_id, f"Training process {rank} of {world_size} started",
                                 data={"rank": rank, "world_size": world_size})

    def log(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        pass

    def metrics(self, step: int, total_steps: int, data: dict, message: str) -> None:
        pass

    def checkpoint(self, step: int, path, metrics: dict) -> str:
        return f"ft:{self.spec.job_id}:ckpt-step-{step}"

    def stop_requested(self) -> str | None:
        return None

    def record_validation_run(self, step: int, samples: list) -> str | None:
        return None


def _stopped(store: Store, job_id: str, reason: str) -> int:
    status = "paused" if reason == "pause" else "cancelled"
    store.update_job(job_id, status=status, requested=None, pid=None,
                     finished_at=None if status == "paused" else int(time.time()))
    store.add_job_event(job_id, "Job paused: resume with gradeloop tune resume" if status == "paused"
                        else "Job cancelled")
    return 0


def main() -> None:
    """Entry point: ``python -m gradeloop.tune.worker JOB_ID``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scrub_std_streams()  # its output is jobs/<id>/worker.log
    sys.exit(run(sys.argv[1]))


if __name__ == "__main__":
    main()
