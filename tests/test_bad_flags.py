"""Bad flag values: one ``error: --flag: …`` line and exit 2 from every command, never a traceback;
the Python API refuses the same values with an InputError naming the option."""

import math

import pytest
from conftest import EXAMPLES, run_cli

from gradeloop import InputError, RetryPolicy, RunOptions

SAMPLES = str(EXAMPLES / "graded-samples.yaml")  # runs without a model: a flag that slips through exits 0
GRADER = str(EXAMPLES / "graders" / "keyword-on-topic.yaml")
RUN = ("eval", "run", SAMPLES, "--no-progress")
TUNE = ("tune", "create", "--model", "local/smollm2", "--training-file", "x.jsonl")

CASES = [
    (RUN + ("--epochs", "0"), "--epochs"),
    (RUN + ("--epochs", "-2"), "--epochs"),
    (RUN + ("--epochs", "abc"), "--epochs"),
    (RUN + ("--epochs", "1.5"), "--epochs"),
    (RUN + ("--concurrency", "0"), "--concurrency"),
    (RUN + ("--concurrency", "-4"), "--concurrency"),
    (RUN + ("--limit", "0"), "--limit"),
    (RUN + ("--timeout", "0"), "--timeout"),
    (RUN + ("--timeout", "-1"), "--timeout"),
    (RUN + ("--timeout", "nan"), "--timeout"),
    (RUN + ("--max-attempts", "0"), "--max-attempts"),
    (RUN + ("--min-pass-rate", "1.5"), "--min-pass-rate"),
    (RUN + ("--min-pass-rate", "-0.1"), "--min-pass-rate"),
    (RUN + ("--base-url", "localhost:8000/v1"), "--base-url"),
    (RUN + ("--base-url", "http://127.0.0.1:99999/v1"), "--base-url"),
    (RUN + ("--base-url", "http://127.0.0.1:0/v1"), "--base-url"),
    (RUN + ("--base-url", "http://127.0.0.1:port/v1"), "--base-url"),
    (RUN + ("--base-url", "http://[::1/v1"), "--base-url"),
    (RUN + ("--base-url", "ftp://example.com/v1"), "--base-url"),
    (RUN + ("--no-such-flag",), "--no-such-flag"),
    (("eval", "run", str(EXAMPLES / "ticket-triage.yaml"), "-m", "openai/x", "--no-progress",
      "--base-url", "http://127.0.0.1:9/v1"), "--base-url"),  # well formed, nothing listens
    (("eval", "resume", "evalrun_x", "--base-url", "http://h:70000/v1", "--no-progress"), "--base-url"),
    (("eval", "list", "--limit", "0"), "--limit"),
    (("eval", "items", "evalrun_x", "--limit", "0"), "--limit"),
    (("eval", "items", "evalrun_x", "--status", "maybe"), "--status"),
    (("eval", "compare", "evalrun_a", "evalrun_b", "--confidence", "1.5"), "--confidence"),
    (("eval", "validate", SAMPLES, "--json", "--bogus"), "--bogus"),
    (("grade", "run", GRADER, "--sample", "x", "--base-url", "no-scheme"), "--base-url"),
    (("grade", "file", GRADER, SAMPLES, "--base-url", "http://h:123456"), "--base-url"),
    (("serve", "-m", "scripted/echo", "--port", "0"), "--port"),
    (("serve", "-m", "scripted/echo", "--port", "65536"), "--port"),
    (("serve", "-m", "scripted/echo", "--port", "-1"), "--port"),
    (("serve", "-m", "scripted/echo", "--max-request-mb", "0"), "--max-request-mb"),
    (("serve", "-m", "scripted/echo", "--max-request-mb", "-5"), "--max-request-mb"),
    (("serve", "-m", "scripted/echo", "--base-url", "127.0.0.1:8000"), "--base-url"),
    (("serve", "-m", "scripted/echo", "--host", "192.0.2.1"), "--host"),  # TEST-NET: no interface has it
    (("suite", "if-categories", "build", "--n", "0", "--out", "OUT"), "--n"),
    (("suite", "if-categories", "build", "--variant", "bogus", "--out", "OUT"), "--variant"),
    (("suite", "if-categories", "build", "--n", "2", "--out", "A_FILE/sub"), "--out"),
    (("suite", "ifeval", "build", "--data", "x.jsonl", "--limit", "0", "--out", "OUT"), "--limit"),
    (("tune", "list", "--limit", "0"), "--limit"),
    (("tune", "events", "ftjob-x", "--limit", "-1"), "--limit"),
    (("tune", "create", "--model", "local/smollm2", "--training-file", "x.jsonl", "--method", "rl"), "--method"),
    (("tune", "create", "--model", "local/smollm2", "--training-file", "x.jsonl", "--seed", "x"), "--seed"),
    (TUNE + ("--hyperparameters", "n_epochs=0"), "--hyperparameters"),
    (TUNE + ("--hyperparameters", "n_epochs=2", "learning_rate_multiplier=-1"), "--hyperparameters"),
    (TUNE + ("--method", "dpo", "--hyperparameters", "beta=0"), "--hyperparameters"),
    (TUNE + ("--option", "max_steps=-3"), "--option"),
    (TUNE + ("--option", "num_generations=0", "--dry-run"), "--option"),
]


@pytest.mark.parametrize("args,flag", CASES, ids=[" ".join(a[:2] + a[-2:]) for a, _ in CASES])
def test_bad_flag_is_one_line_and_exit_2(args, flag, tmp_path):
    (tmp_path / "A_FILE").write_text("a file, not a folder")
    args = [str(tmp_path / "out") if a == "OUT" else a.replace("A_FILE", str(tmp_path / "A_FILE")) for a in args]
    result = run_cli(*args, cwd=tmp_path, timeout=60)
    text = result.stdout + result.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert result.returncode == 2, text
    assert "Traceback" not in text
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], text
    assert not (tmp_path / "out").exists()  # nothing was written


def test_messages_say_what_is_wrong_and_what_is_allowed():
    line = run_cli(*RUN, "--epochs", "0").stderr.strip()
    assert line == "error: --epochs: 0 is not allowed (a whole number, 1 or more)"
    line = run_cli(*RUN, "--min-pass-rate", "2").stderr.strip()
    assert line == "error: --min-pass-rate: 2.0 is not allowed (a number from 0 to 1)"
    line = run_cli("serve", "-m", "scripted/echo", "--port", "70000").stderr.strip()
    assert line == "error: --port: 70000 is not allowed (a port from 1 to 65535)"


def test_serve_on_a_port_in_use_is_one_line_naming_the_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli("serve", "-m", "scripted/echo", "--port", port, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: --port: {port} is already in use on 127.0.0.1 (a free port)"


def test_an_output_path_that_cannot_be_written_is_one_line_naming_the_flag(tmp_path):
    import json

    [run] = json.loads(run_cli(*RUN, "--json").stdout)["data"]
    (tmp_path / "A_FILE").write_text("a file, not a folder")
    bad = str(tmp_path / "A_FILE" / "out.jsonl")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"item": {}, "sample": "on topic"}) + "\n")
    for args in (("tune", "data", "sft", "--from-run", run["id"], "--out", bad),
                 ("tune", "data", "dpo", "--from-run", run["id"], "--out", bad),
                 ("grade", "file", str(EXAMPLES / "graders" / "keyword-on-topic.yaml"), str(rows), "--out", bad),
                 ("eval", "export", run["id"], "--out", bad)):
        result = run_cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and ("--out" in line or bad in line), line


def test_a_password_in_a_bad_base_url_is_not_repeated():
    result = run_cli(*RUN, "--base-url", "http://user:s3cret-pw@127.0.0.1:99999/v1")
    assert result.returncode == 2 and "99999" in result.stderr and "s3cret-pw" not in result.stderr


@pytest.mark.parametrize("kwargs,field", [
    ({"epochs": 0}, "epochs"), ({"concurrency": -1}, "concurrency"), ({"limit": 0}, "limit"),
    ({"timeout": 0.0}, "timeout"), ({"timeout": math.inf}, "timeout"), ({"epochs": True}, "epochs"),
    ({"base_url": "http://localhost:99999/v1"}, "base_url"), ({"base_url": "localhost:8000"}, "base_url"),
])
def test_run_options_refuse_bad_values(kwargs, field):
    with pytest.raises(InputError) as info:
        RunOptions(**kwargs)
    assert info.value.field == field and info.value.exit_code == 2


def test_retry_policy_and_serve_refuse_bad_values():
    from gradeloop.serve import serve

    with pytest.raises(InputError) as info:
        RetryPolicy(max_attempts=0)
    assert info.value.field == "max_attempts"
    with pytest.raises(InputError) as info:
        RetryPolicy(max_delay=-1)
    assert info.value.field == "max_delay"
    for kwargs, field in (({"port": 0}, "port"), ({"max_request_mb": 0}, "max_request_mb"),
                          ({"base_url": "nope"}, "base_url")):
        with pytest.raises(InputError) as info:
            serve(["scripted/echo"], **kwargs)
        assert info.value.field == field
    RunOptions(epochs=1, concurrency=1, limit=1, timeout=0.5, base_url="https://user:pw@example.com:8443/v1")


def test_compare_runs_refuses_a_confidence_out_of_range():
    from gradeloop import Store
    from gradeloop.report import compare_runs

    with pytest.raises(InputError) as info:
        compare_runs(Store(), "evalrun_a", "evalrun_b", confidence=1.0)
    assert info.value.field == "confidence"


def test_job_values_are_checked_before_a_job_exists():
    from gradeloop.tune._jobs import check_job_values

    assert check_job_values("supervised", {"n_epochs": "auto", "batch_size": 4}, {"lora_r": 8}) == {
        "n_epochs": "auto", "batch_size": 4}
    for hyper, options, field in (({"n_epochs": 0}, {}, "hyperparameters"), ({"beta": -1.0}, {}, "hyperparameters"),
                                  ({}, {"max_completion_tokens": 0}, "option"), ({}, {"lora_dropout": 1.5}, "option")):
        with pytest.raises(InputError) as info:
            check_job_values("dpo", hyper, options)
        assert info.value.field == field
