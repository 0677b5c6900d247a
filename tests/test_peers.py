"""Peer tools against gradeloop serve: Inspect AI's OpenAI-compatible provider."""

import pytest

from gradeloop.serve import BackgroundServer


def test_inspect_ai_runs_an_eval_against_gradeloop_serve(tiny_model_dir, tmp_path, monkeypatch):
    inspect_ai = pytest.importorskip("inspect_ai")
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import exact
    from inspect_ai.solver import generate

    with BackgroundServer(["scripted/echo", f"hf/{tiny_model_dir}"]) as server:
        monkeypatch.setenv("GRADELOOP_BASE_URL", server.url)  # openai-api/<service>/… reads <SERVICE>_BASE_URL
        monkeypatch.setenv("GRADELOOP_API_KEY", "not-needed")
        task = inspect_ai.Task(dataset=[Sample(input="ping", target="ping"), Sample(input="pong", target="nope")],
                               solver=generate(), scorer=exact())
        [echo] = inspect_ai.eval(task, model="openai-api/gradeloop/scripted/echo", log_dir=str(tmp_path),
                                 display="none")
        [tiny] = inspect_ai.eval(task, model=f"openai-api/gradeloop/hf/{tiny_model_dir}", log_dir=str(tmp_path),
                                 display="none", max_tokens=5, temperature=0)
    assert echo.status == "success" and echo.results.scores[0].metrics["mean"].value == 0.5
    assert tiny.status == "success" and len(tiny.samples) == 2
    assert all(s.output.completion is not None for s in tiny.samples)
