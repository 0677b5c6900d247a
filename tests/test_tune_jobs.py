"""Fine-tuning jobs end to end through the CLI: background worker, events, checkpoints,
cancel, pause/resume, a crash (kill -9) and resume, and the model used by name in an eval."""

import json
import os
import signal
import time

import pytest

from conftest import run_cli
from gradeloop import Store
from gradeloop.tune._jobs import pause_job, refresh_job

SFT_ROWS = [{"messages": [{"role": "system", "content": "Answer in one word."},
                          {"role": "user", "content": f"What comes after {a}?"},
                          {"role": "assistant", "content": b}]}
            for a, b in [("one", "two"), ("two", "three"), ("three", "four"), ("four", "five"), ("five", "six"),
                         ("six", "seven"), ("seven", "eight"), ("eight", "nine")]]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def create(tiny_model_dir, tmp_path, *extra):
    train = write_rows(tmp_path / "train.jsonl", SFT_ROWS)
    result = run_cli("tune", "create", "--method", "supervised", "--model", f"hf/{tiny_model_dir}",
                     "--training-file", str(train), "--seed", "3", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(job_id, statuses, timeout=600, condition=None):
    """Poll the store directly (a CLI call per poll is too slow to catch a tiny model's job
    mid-run); refresh_job is what ``tune show`` calls, so a dead worker is noticed the same way."""
    store = Store()
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = refresh_job(store, job_id)
        if job["status"] in statuses and (condition is None or condition(store, job)):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} did not reach {statuses}: {job['status']}")


def metric_steps(store, job_id):
    return [e["data"]["step"] for e in store.job_events(job_id) if e["type"] == "metrics"]


def test_sft_job_runs_in_the_background_and_its_model_is_usable_by_name(tiny_model_dir, tmp_path):
    job = create(tiny_model_dir, tmp_path, "--hyperparameters", "n_epochs=1 batch_size=2", "--option", "max_steps=4")
    assert job["object"] == "fine_tuning.job" and job["status"] in ("queued", "running")
    assert job["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 2}}}
    done = wait_for(job["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    assert done["fine_tuned_model"] == f"ft:{job['id']}" and done["finished_at"]
    shown = json.loads(run_cli("tune", "show", job["id"], "--json").stdout)
    assert shown["object"] == "fine_tuning.job" and shown["status"] == "succeeded"
    assert shown["fine_tuned_model"] == f"ft:{job['id']}" and shown["trained_tokens"] > 0

    events = json.loads(run_cli("tune", "events", job["id"], "--json").stdout)
    assert events["object"] == "list"
    metrics = [e for e in events["data"] if e["type"] == "metrics"]
    assert metrics and all(e["object"] == "fine_tuning.job.event" for e in events["data"])
    assert "train_loss" in metrics[0]["data"] and "step" in metrics[0]["data"]

    ckpts = json.loads(run_cli("tune", "checkpoints", job["id"], "--json").stdout)["data"]
    assert ckpts and ckpts[0]["fine_tuned_model_checkpoint"].startswith(f"ft:{job['id']}:ckpt-step-")

    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "any", "input": "{{ sample.output_text }}",
                              "operation": "like", "reference": ""}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [{"item": {"n": "two"}}]},
                        "input_messages": {"type": "template", "template": [
                            {"role": "user", "content": "What comes after {{ item.n }}?"}]},
                        "sampling_params": {"max_completion_tokens": 4, "temperature": 0}}}))
    for model in (done["fine_tuned_model"], ckpts[0]["fine_tuned_model_checkpoint"]):
        ran = run_cli("eval", "run", str(eval_file), "--model", model, "--json", "--no-progress")
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["data"][0]["model"] == model
    listed = json.loads(run_cli("tune", "list", "--json").stdout)
    assert listed["object"] == "list" and listed["data"][0]["id"] == job["id"]

    import openai

    from gradeloop.serve import BackgroundServer

    with BackgroundServer([done["fine_tuned_model"]]) as server:  # and in serve, by the same name
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        assert client.models.list().data[0].id == done["fine_tuned_model"]
        reply = client.chat.completions.create(model=done["fine_tuned_model"], max_tokens=4,
                                               messages=[{"role": "user", "content": "What comes after two?"}])
        assert reply.choices[0].message.content is not None


def test_bad_file_fails_validation_and_nothing_trains(tiny_model_dir, tmp_path):
    train = write_rows(tmp_path / "train.jsonl", SFT_ROWS[:2] + [{"messages": [{"role": "user", "content": "q"}]}])
    result = run_cli("tune", "create", "--model", f"hf/{tiny_model_dir}", "--training-file", str(train))
    assert result.returncode == 2 and f"{train}:3: messages: no assistant message" in result.stderr
    [job] = Store().list_jobs()
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_file" and not job["pid"]
    assert run_cli("tune", "resume", job["id"]).returncode == 2


def test_leakage_between_training_and_validation_is_refused(tiny_model_dir, tmp_path):
    train = write_rows(tmp_path / "train.jsonl", SFT_ROWS)
    valid = write_rows(tmp_path / "valid.jsonl", SFT_ROWS[3:4])
    result = run_cli("tune", "create", "--model", f"hf/{tiny_model_dir}", "--training-file", str(train),
                     "--validation-file", str(valid))
    assert result.returncode == 2 and f"{train}:4:" in result.stderr and "leak" in result.stderr


def test_cancel_a_running_job(tiny_model_dir, tmp_path):
    job = create(tiny_model_dir, tmp_path, "--option", "max_steps=5000")  # never reached: cancelled first
    wait_for(job["id"], ("running",), condition=lambda s, j: len(metric_steps(s, j["id"])) >= 2)
    assert run_cli("tune", "cancel", job["id"]).returncode == 0
    done = wait_for(job["id"], ("cancelled", "failed", "succeeded"))
    assert done["status"] == "cancelled" and done["fine_tuned_model"] is None
    assert run_cli("tune", "cancel", job["id"]).returncode == 2


def test_pause_then_resume_continues_from_the_checkpoint(tiny_model_dir, tmp_path):
    job = create(tiny_model_dir, tmp_path, "--option", "max_steps=200")
    wait_for(job["id"], ("running",), condition=lambda s, j: len(metric_steps(s, j["id"])) >= 2)
    pause_job(Store(), job["id"])  # what `tune pause` calls; a CLI start-up could miss a tiny model's job
    paused = wait_for(job["id"], ("paused", "failed", "succeeded"))
    assert paused["status"] == "paused"
    result = run_cli("tune", "pause", job["id"])
    assert result.returncode == 2 and "only a running job can be paused" in result.stderr
    store = Store()
    before = metric_steps(store, job["id"])
    assert store.job_checkpoints(job["id"])
    assert run_cli("tune", "resume", job["id"]).returncode == 0
    done = wait_for(job["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    after = metric_steps(store, job["id"])[len(before):]
    assert after and min(after) > max(before)  # the global step went on, it did not restart


def test_a_killed_worker_is_noticed_and_the_job_resumes(tiny_model_dir, tmp_path):
    job = create(tiny_model_dir, tmp_path, "--option", "max_steps=200")
    store = Store()

    def checkpointed(s, j):
        return bool(s.job_checkpoints(j["id"]))

    running = wait_for(job["id"], ("running",), condition=checkpointed)
    os.killpg(store.get_job(job["id"])["pid"], signal.SIGKILL)
    crashed = wait_for(job["id"], ("failed",), timeout=60)
    assert crashed["error"]["code"] == "worker_died"
    assert run_cli("tune", "resume", job["id"]).returncode == 0
    done = wait_for(job["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    del running


def test_unknown_hyperparameter_and_missing_grader(tiny_model_dir, tmp_path):
    train = write_rows(tmp_path / "train.jsonl", SFT_ROWS)
    result = run_cli("tune", "create", "--model", f"hf/{tiny_model_dir}", "--training-file", str(train),
                     "--hyperparameters", "beta=0.1")
    assert result.returncode == 2 and "'beta' is not a supervised hyperparameter" in result.stderr
    result = run_cli("tune", "create", "--method", "reinforcement", "--model", f"hf/{tiny_model_dir}",
                     "--training-file", str(train))
    assert result.returncode == 2 and "needs a grader" in result.stderr
    assert Store().list_jobs() == []


@pytest.fixture(autouse=True)
def _no_stray_workers():
    yield
    store = Store()
    for job in store.list_jobs(100):
        if job["pid"]:
            try:
                os.killpg(job["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_rft_job_records_validation_runs_and_keeps_three_checkpoints(tiny_model_dir, tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"Say {w}."}], "answer": w}
            for w in ["yes", "no", "one", "two", "fox", "dog", "end", "stop"]]
    train = write_rows(tmp_path / "train.jsonl", rows[:6])
    valid = write_rows(tmp_path / "valid.jsonl", rows[6:])
    grader = tmp_path / "grader.yaml"
    grader.write_text("type: python\nname: length\nsource: |\n  def grade(sample, item):\n"
                      "      return min(1.0, len(sample['output_text']) / 20)\n")
    dry = run_cli("tune", "create", "--method", "reinforcement", "--model", f"hf/{tiny_model_dir}",
                  "--training-file", str(train), "--validation-file", str(valid), "--grader", str(grader),
                  "--option", "max_completion_tokens=8", "num_generations=2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert Store().list_jobs() == []  # a dry run creates no job
    result = run_cli("tune", "create", "--method", "reinforcement", "--model", f"hf/{tiny_model_dir}",
                     "--training-file", str(train), "--validation-file", str(valid), "--grader", str(grader),
                     "--hyperparameters", "n_epochs=1", "batch_size=1", "eval_interval=1",
                     "--option", "max_steps=5", "max_completion_tokens=8", "num_generations=2", "--json")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["method"]["reinforcement"]["grader"]["type"] == "python"
    done = wait_for(job["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    runs = json.loads(run_cli("eval", "list", "--json").stdout)["data"]
    validation = [r for r in runs if r["name"].startswith(f"ft:{job['id']}:ckpt-step-")]
    assert len(validation) >= 4 and all(r["result_counts"]["total"] == 2 for r in validation)
    kept = json.loads(run_cli("tune", "checkpoints", job["id"], "--json").stdout)["data"]
    assert 1 <= len(kept) <= 3 and all("valid_reward_mean" in c["metrics"] for c in kept)
    metrics = [e["data"] for e in Store().job_events(job["id"]) if e["type"] == "metrics"]
    assert all("train_reward_mean" in m["scores"] for m in metrics)


def test_accelerate_configs_are_checked_and_passed_to_the_launcher(tmp_path):
    from conftest import EXAMPLES
    from gradeloop.errors import InputError
    from gradeloop.tune._jobs import check_accelerate_config, launch_command

    for name in ("deepspeed-zero2.yaml", "fsdp.yaml"):
        config = check_accelerate_config(EXAMPLES / "accelerate" / name)
        command = launch_command("ftjob-x", {"accelerate_config": config})
        assert command[1:5] == ["-m", "accelerate.commands.launch", "--config_file", config]
        assert command[-3:] == ["-m", "gradeloop.tune.worker", "ftjob-x"]
    # accelerate leaves multi-CPU launches to mpirun (it would start one process): torchrun starts them
    command = launch_command("ftjob-x", {"accelerate_config": check_accelerate_config(
        EXAMPLES / "accelerate" / "cpu-2-processes.yaml")})
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "gradeloop.tune.worker", "ftjob-x"]
    assert launch_command("ftjob-x", {})[1:] == ["-m", "gradeloop.tune.worker", "ftjob-x"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_processes: 2\n")
    with pytest.raises(InputError, match="not an accelerate config"):
        check_accelerate_config(bad)
    with pytest.raises(InputError, match="not found"):
        check_accelerate_config(tmp_path / "missing.yaml")


def test_sft_job_on_two_cpu_processes_with_accelerate(tiny_model_dir, tmp_path):
    from conftest import EXAMPLES

    job = create(tiny_model_dir, tmp_path, "--option", "max_steps=3",
                 f"accelerate_config={EXAMPLES / 'accelerate' / 'cpu-2-processes.yaml'}")
    done = wait_for(job["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", (done["error"], (tmp_path / "x").exists())
    store = Store()
    steps = metric_steps(store, job["id"])
    assert steps == sorted(set(steps))  # one process reported: no duplicate events
    started = sorted((e["data"]["rank"], e["data"]["world_size"]) for e in store.job_events(job["id"])
                     if e["data"] and "rank" in e["data"])
    assert started == [(0, 2), (1, 2)]  # each process of the launch said so itself
