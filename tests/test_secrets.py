"""Secrets never reach the store, exports or the terminal; the store is private (issue 11, 1–3).

The endpoint is a real HTTP server on 127.0.0.1 that behaves as careless servers do: a 401 that
repeats the credential it was sent, a 500 that echoes the request path and headers, and a model
that repeats the key. The CLI runs in subprocesses, as a user runs it.
"""

import base64
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from conftest import run_cli
from gradeloop import Store
from gradeloop.redact import MIN_SECRET_LENGTH, public_url, scrub, scrub_json
from gradeloop.testing import FakeOpenAI

# no pattern matches these: only the registry of values in use can catch them
KEY = "gl-live-" + "4f9c1e7a" * 5
USER, PASSWORD, QUERY_KEY = "bob-the-user", "pa55-w0rd-xyz", "QK3Y0123456789abcdef"
LEAKS = {"leak401": "401_echo", "leak500": "500_echo"}


def last_user(body: dict) -> str:
    return body["messages"][-1]["content"]


def leaky_server(cls: type = FakeOpenAI) -> FakeOpenAI:
    """Item 'repeat': the model repeats the key; 'leak401' / 'leak500': the echoing errors."""
    def respond(body: dict) -> str:
        q = last_user(body)
        return f"my key is {KEY}, sent as Authorization: Bearer {KEY}" if q == "repeat" else q
    return cls(responder=respond, fault_for=lambda body: LEAKS.get(last_user(body)))


JUDGE = {"type": "score_model", "name": "judge", "model": "openai/judge", "range": [0, 1],
         "input": [{"role": "user", "content": "{{ item.judge }}"}]}


def write_eval(folder: Path, items: list[dict]) -> Path:
    """An eval that samples each item's ``q`` and asks a judge its ``judge`` (when it has one)."""
    path = folder / "leak.json"
    rows = [{"item": item} for item in items]
    judged = [JUDGE] if any("judge" in item for item in items) else []
    path.write_text(json.dumps({
        "name": "leak",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "echo", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "{{ item.q }}"}, *judged],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": rows},
                        "input_messages": {"type": "template",
                                           "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    }))
    return path


def store_texts(home: Path) -> tuple[list[bytes], list[str]]:
    """The raw bytes of every file under the home (database, WAL, SHM …) and every row of every table."""
    raw = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    conn = sqlite3.connect(home / "gradeloop.db")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = [repr(row) for t in tables for row in conn.execute(f"SELECT * FROM {t}")]
    conn.close()
    return raw, rows


def assert_nowhere(secrets: list[str], raw: list[bytes], texts: list[str]) -> None:
    for secret in secrets:
        assert all(secret.encode() not in blob for blob in raw), secret
        assert all(secret not in text for text in texts), secret


def run_and_read(eval_path: Path, base_url: str, home: Path, tmp_path: Path) -> tuple[str, list[dict], list[str]]:
    """Run the eval through the CLI and read everything back (:func:`read_back`).
    Returns (run id, output items, all texts)."""
    ran = run_cli("eval", "run", str(eval_path), "-m", "openai/fake", "--base-url", base_url, "--json",
                  "--no-progress", "--max-attempts", "2")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["data"][0]["id"]
    items, texts = read_back(run_id, tmp_path)
    return run_id, items, texts + [ran.stdout, ran.stderr]


def read_back(run_id: str, tmp_path: Path) -> tuple[list[dict], list[str]]:
    """Read a run back the ways a user can: every command's output (stdout and stderr), every
    export format. Returns (output items, all texts)."""
    calls = [run_cli("eval", "show", run_id, "--json"), run_cli("eval", "show", run_id),
             run_cli("eval", "list", "--json"), run_cli("eval", "items", run_id), run_cli("eval", "export", run_id)]
    items = run_cli("eval", "items", run_id, "--json")
    calls.append(items)
    texts = []
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"export.{fmt}"
        calls.append(run_cli("eval", "export", run_id, "--out", str(out)))
        texts.append(out.read_bytes().decode("latin-1"))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            texts.append(json.dumps(pq.read_table(out).to_pylist(), default=str))
    assert all(c.returncode == 0 for c in calls), [c.stderr for c in calls]
    texts += [t for c in calls for t in (c.stdout, c.stderr)]
    return json.loads(items.stdout)["data"], texts


def by_question(items: list[dict]) -> dict[str, dict]:
    return {o["datasource_item"]["q"]: o["sample"] for o in items}


def test_api_key_never_reaches_store_exports_or_terminal(tmp_path, monkeypatch, _isolated_home):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    home = _isolated_home
    Store()  # created here and held open below, so the WAL the CLI writes stays to be read
    watcher = sqlite3.connect(home / "gradeloop.db")
    watcher.execute("SELECT COUNT(*) FROM runs").fetchone()
    with leaky_server() as server:
        questions = [{"q": "hello", "judge": "leak401"}, {"q": "repeat", "judge": "repeat"},
                     {"q": "leak401", "judge": "-"}, {"q": "leak500", "judge": "-"}]
        run_id, items, texts = run_and_read(write_eval(tmp_path, questions), server.url, home, tmp_path)
        (tmp_path / "judge.json").write_text(json.dumps(JUDGE))
        (tmp_path / "samples.jsonl").write_text(json.dumps({"item": {"judge": "leak401"}, "sample": "x"}) + "\n")
        graded = run_cli("grade", "file", str(tmp_path / "judge.json"), str(tmp_path / "samples.jsonl"),
                         "--out", str(tmp_path / "graded.jsonl"), "--base-url", server.url)
    assert graded.returncode == 0, graded.stderr
    graded_out = (tmp_path / "graded.jsonl").read_text()
    assert "Incorrect API key provided: ***" in graded_out
    texts += [graded.stdout, graded.stderr, graded_out]
    samples = by_question(items)
    judge_errors = next(o for o in items if o["datasource_item"]["q"] == "hello")["results"][1]["errors"]
    assert "Incorrect API key provided: ***" in judge_errors["model_grader_server_error_details"]
    # the leaks happened and were scrubbed, not avoided
    assert samples["repeat"]["output"][0]["content"] == "my key is ***, sent as Authorization: Bearer ***"
    assert samples["leak401"]["error"]["message"].startswith("HTTP 401: Incorrect API key provided: ***.")
    assert '"authorization": "***"' in samples["leak500"]["error"]["message"]
    assert samples["hello"]["output"][0]["content"] == "hello"
    assert (home / "gradeloop.db-wal").stat().st_size > 0
    raw, rows = store_texts(home)
    watcher.close()
    assert_nowhere([KEY], raw, rows + texts)


def test_url_credentials_never_stored_and_resume_asks_for_the_url(tmp_path, _isolated_home):
    home = _isolated_home
    paths = []

    class Recording(FakeOpenAI):
        async def _respond(self, method, path, headers, raw, writer):
            paths.append((path, headers.get("authorization", "")))
            return await super()._respond(method, path, headers, raw, writer)

    with leaky_server(Recording) as server:
        url = server.url.replace("127.0.0.1", f"{USER}:{PASSWORD}@127.0.0.1") + f"?api-key={QUERY_KEY}"
        run_id, items, texts = run_and_read(write_eval(tmp_path, [{"q": "hello"}, {"q": "leak401"}, {"q": "leak500"}]),
                                            url, home, tmp_path)
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert paths[0] == (f"/v1/chat/completions?api-key={QUERY_KEY}", f"Basic {basic}")  # sent as given
        samples = by_question(items)
        assert samples["leak401"]["error"]["message"].startswith("HTTP 401: Incorrect API key provided: ***.")
        assert "?api-key=***" in samples["leak500"]["error"]["message"]
        conn = sqlite3.connect(home / "gradeloop.db")
        stored = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])["base_url"]
        call_urls = {r[0] for r in conn.execute("SELECT base_url FROM model_calls")}
        conn.execute("DELETE FROM output_items WHERE idx = 0")  # as if killed before item 0 was graded
        conn.execute("DELETE FROM samples WHERE idx = 0")
        conn.execute("DELETE FROM response_cache")  # so that the resume calls the server
        conn.commit()
        conn.close()
        assert stored == f"{server.url}?api-key=***" and call_urls == {stored}

        refused = run_cli("eval", "resume", run_id, "--no-progress")
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert "--base-url" in refused.stderr and "credentials are never stored" in refused.stderr
        sent = len(paths)
        resumed = run_cli("eval", "resume", run_id, "--base-url", url, "--no-progress", "--json")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["data"][0]["result_counts"]["total"] == 3
        assert paths[sent:] == [(f"/v1/chat/completions?api-key={QUERY_KEY}", f"Basic {basic}")]
        from_env = run_cli("eval", "resume", run_id, "--no-progress", env={"OPENAI_BASE_URL": url})
        assert from_env.returncode == 0, from_env.stderr
        texts += [t for c in (refused, resumed, from_env) for t in (c.stdout, c.stderr)]
    raw, rows = store_texts(home)
    assert_nowhere([PASSWORD, QUERY_KEY, basic, f"{USER}:{PASSWORD}", USER], raw, rows + texts)


def test_an_older_store_leaks_nothing_on_the_way_out(tmp_path, monkeypatch):
    """A store written before scrubbing holds the key: the JSON printer, the tables and the
    exports still never show it."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI() as server:
        run_id, _, _ = run_and_read(write_eval(tmp_path, [{"q": "hello"}]), server.url, Path(), tmp_path)
    conn = sqlite3.connect(Store().path)  # as an older gradeloop stored it: unscrubbed
    conn.execute("UPDATE samples SET output = ?", (json.dumps({"role": "assistant", "content": KEY}),))
    conn.commit()
    conn.close()
    items, texts = read_back(run_id, tmp_path)
    assert items[0]["sample"]["output"][0]["content"] == "***"
    assert_nowhere([KEY], [], texts)


def test_serve_returns_no_upstream_credential(monkeypatch):
    """``gradeloop serve`` in front of an upstream that echoes the key: its error body is scrubbed."""
    import httpx

    from gradeloop.serve import BackgroundServer

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with leaky_server() as upstream, BackgroundServer(["openai/fake"], base_url=upstream.url) as served:
        reply = httpx.post(f"{served.url}/chat/completions", timeout=30,
                           json={"model": "openai/fake", "messages": [{"role": "user", "content": "leak401"}]})
    assert "Incorrect API key provided: ***." in reply.json()["error"]["message"]
    assert KEY not in reply.text


def test_every_store_write_is_scrubbed(monkeypatch, _isolated_home):
    """Tables no endpoint test reaches: evals, run items, the cache, jobs and their events."""
    monkeypatch.setenv("MY_SERVICE_TOKEN", KEY)
    store = Store()
    eval_id = store.add_eval({"name": f"leaks {KEY}", "testing_criteria": []})
    store.create_run(eval_id=eval_id, model="openai/x", name=KEY, data_source=None, config={"k": KEY},
                     rows=[(0, {"q": f"say {KEY}"}, None, None, None)])
    store.cache_put("k", {"choices": [{"message": {"content": KEY}}], KEY: 1})
    job = store.create_job(model="m", method="supervised", training_file="t.jsonl", validation_file=None,
                           hyperparameters={}, grader=None, options={"api_key": KEY}, seed=0, suffix=None,
                           metadata=None, output_dir_for=lambda job_id: f"/tmp/{job_id}")
    store.add_job_event(job["id"], f"Training failed: 401 Incorrect API key provided: {KEY}",
                        data={"traceback": f"Authorization: Bearer {KEY}"})
    store.update_job(job["id"], error={"code": "training_failed", "message": KEY})
    assert store.get_job(job["id"])["error"]["message"] == "***"
    assert store.cache_get("k") == {"choices": [{"message": {"content": "***"}}], "***": 1}
    raw, rows = store_texts(_isolated_home)
    assert_nowhere([KEY], raw, rows)


def test_scrub_rules(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "acme-0123456789")
    monkeypatch.setenv("SHORT_PASSWORD", "abc")  # below MIN_SECRET_LENGTH: ordinary text keeps it
    assert MIN_SECRET_LENGTH == 8
    assert scrub("key acme-0123456789, password abc") == "key ***, password abc"
    assert scrub("Incorrect API key provided: sk-proj-AbCdEfGhIjKlMnOpQrSt1234") == \
        "Incorrect API key provided: sk-***"
    assert scrub("authorization: Bearer eyJhbGciOi.J9x") == "authorization: Bearer ***"
    assert scrub("GET /v1?api-key=Zz0123456789&api-version=2024-02-01") == "GET /v1?api-key=***&api-version=2024-02-01"
    assert scrub("bearer bonds; client = OpenAI(api_key=os.environ['K'])") == \
        "bearer bonds; client = OpenAI(api_key=os.environ['K'])"  # words and code are not tokens
    text = json.dumps({"headers": {"Authorization": "Basic Ym9i", "api_key": None}, "n": "acme-0123456789"})
    assert json.loads(scrub(text)) == {"headers": {"Authorization": "***", "api_key": None}, "n": "***"}
    assert scrub_json({"acme-0123456789": ("x", 1, None)}) == {"***": ["x", 1, None]}
    assert public_url("https://u:p@h.example:8443/v1?api-key=abc&api-version=1") == \
        "https://h.example:8443/v1?api-key=***&api-version=1"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the common default, under which files are world-readable
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_is_private(umask_022, _isolated_home):
    home = _isolated_home
    store = Store()
    store.add_eval({"name": "x", "testing_criteria": []})
    assert mode(home) == 0o700
    assert {p.name: mode(p) for p in home.iterdir()} == \
        {"gradeloop.db": 0o600, "gradeloop.db-wal": 0o600, "gradeloop.db-shm": 0o600}
    store.close()
    other = Store(home / "sub" / "other.db")  # a new folder for an explicit path is private too
    assert mode(home / "sub") == 0o700 and mode(other.path) == 0o600


def test_older_store_is_fixed_on_open(umask_022, _isolated_home):
    home = _isolated_home
    home.mkdir()
    older = sqlite3.connect(home / "gradeloop.db")  # as an older gradeloop left it, WAL and SHM in use
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE t (x)")
    older.execute("INSERT INTO t VALUES (1)")
    older.commit()
    for path in [home, *home.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert len(list(home.iterdir())) == 3
    Store()
    older.close()
    assert mode(home) == 0o700
    assert all(mode(p) == 0o600 for p in home.iterdir())


def test_opening_the_store_again_keeps_the_locks_of_open_connections(_isolated_home):
    """Tightening modes must not open the database file: closing any descriptor of it drops the
    POSIX locks the open connections of this process hold, and another process that then closes
    the database believes it was the last one and removes the WAL under them."""
    import subprocess
    import sys

    first = Store()
    first.add_eval({"name": "x", "testing_criteria": []})
    Store()
    probe = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT * FROM evals'); c.close()"
    subprocess.run([sys.executable, "-c", probe, str(first.path)], check=True)
    assert Path(f"{first.path}-wal").exists()
    assert first.get_eval(first.add_eval({"name": "y", "testing_criteria": []}))["name"] == "y"
