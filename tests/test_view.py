"""The read-only web viewer: JSON twins, keyset paging, filters, token, read-only (issue 13, point 1).
Runs are real (FakeOpenAI on 127.0.0.1); the large store is filled with rows directly for speed."""

import hashlib
import json
import time

import pytest

from conftest import run_cli
from gradeloop import RunOptions, Store, eval_from_dict, run_eval
from gradeloop.store import default_home
from gradeloop.testing import FakeOpenAI

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from gradeloop.view import create_app  # noqa: E402

N = 40


def triage(n: int = N) -> dict:
    return {
        "name": "triage",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [
            {"type": "string_check", "name": "says yes", "input": "{{ sample.output_text }}", "operation": "eq",
             "reference": "yes"},
            {"type": "string_check", "name": "not empty", "input": "{{ sample.output_text }}", "operation": "ne",
             "reference": ""}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": f"q{i}", "group": "easy" if i % 2 else "hard"}} for i in range(n)]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    }


def answer(body: dict) -> str:
    i = int(body["messages"][-1]["content"][1:])
    limit = 30 if body["model"] == "big" else 20
    return "yes" if i < limit else f"no <b>{i}</b>"


@pytest.fixture
def runs() -> list[str]:
    with FakeOpenAI(responder=answer) as server:
        return run_eval(eval_from_dict(triage()), ["openai/big", "openai/small"],
                        options=RunOptions(base_url=server.url))


def db_path():
    return default_home() / "gradeloop.db"


@pytest.fixture
def client(runs):
    Store().close()
    return TestClient(create_app(db_path()))


def test_home_lists_the_eval_and_its_runs_with_pass_rate_interval_cost_and_progress(client, runs):
    data = client.get("/index.json").json()
    assert client.get("/?format=json").json() == data
    [ev] = data["evals"]
    assert ev["name"] == "triage" and {r["id"] for r in ev["runs"]} == set(runs)
    big = next(r for r in ev["runs"] if r["model"] == "openai/big")
    assert big["status"] == "completed" and big["progress"] == {"done": N, "total": N}
    assert big["pass_rate"]["value"] == 30 / N and big["pass_rate"]["low"] < 0.75 < big["pass_rate"]["high"]
    assert big["tokens"]["prompt"] > 0 and "cost_per_1k_items" in big["cost"]
    html = client.get("/").text
    assert "openai/big" in html and "Compare the ticked runs" in html


def test_run_page_has_criteria_fields_and_pages_items(client, runs):
    data = client.get(f"/runs/{runs[0]}.json", params={"limit": 15}).json()
    assert [c["name"] for c in data["criteria"]] == ["says yes", "not empty"]
    assert data["criteria"][0]["passed"] == 30 and data["criteria"][0]["low"] < 0.75
    by_group = {r["value"]: r for r in data["by"][1]["rows"]} if data["by"][0]["field"] == "q" else \
        {r["value"]: r for r in data["by"][0]["rows"]}
    assert by_group["easy"]["passed"] == 15 and by_group["hard"]["passed"] == 15
    seen, after = [], None
    while True:
        page = client.get(f"/runs/{runs[0]}", params={"format": "json", "limit": 15, "after": after}).json()["items"]
        seen += [r["index"] for r in page["rows"]]
        after = page["next"]
        if after is None:
            break
    assert seen == list(range(N))
    html = client.get(f"/runs/{runs[1]}").text
    assert "no &lt;b&gt;" in html and "<b>20</b>" not in html  # outputs are escaped
    assert '<script src="/assets/plotly.js" defer>' in html and "Plotly.newPlot" in html
    js = client.get("/assets/plotly.js")  # from the plotly wheel, not a CDN
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 1_000_000


def test_run_page_filters_failed_by_field_and_text(client, runs):
    def indexes(**params):
        return [r["index"] for r in client.get(f"/runs/{runs[0]}.json", params={"limit": 100, **params}).json()
                ["items"]["rows"]]

    assert indexes(status="fail") == list(range(30, N))
    assert indexes(status="pass", field="group", value="easy") == list(range(1, 30, 2))
    assert indexes(q="<B>33<") == [33]  # output text, case-insensitive
    assert indexes(q="q17") == [17]  # item text
    assert indexes(status="error") == []


def test_item_page_shows_messages_output_graders_and_calls(client, runs):
    data = client.get(f"/runs/{runs[1]}/items/25.json").json()
    assert data["item"] == {"q": "q25", "group": "easy"} and data["status"] == "fail"
    assert data["sample"]["input"][-1]["content"] == "q25" and data["output"] == "no <b>25</b>"
    assert [s["name"] for s in data["scores"]] == ["says yes", "not empty"]
    [call] = data["calls"]
    assert call["request"]["model"] == "small"
    assert call["response"]["choices"][0]["message"]["content"] == "no <b>25</b>"
    assert client.get(f"/runs/{runs[1]}/items/999.json").status_code == 404
    assert client.get(f"/runs/{runs[1]}/items/abc").status_code == 400
    assert client.get("/runs/evalrun_nope.json").status_code == 404


def test_compare_page_puts_flipped_items_first_with_paired_statistics(client, runs):
    data = client.get("/compare.json", params=[("run", runs[0]), ("run", runs[1])]).json()
    assert data["flipped"] == 10 and data["shared"] == N
    assert [r["cells"][0]["index"] for r in data["rows"][:10]] == list(range(20, 30))
    assert all(r["flipped"] for r in data["rows"][:10]) and not any(r["flipped"] for r in data["rows"][10:])
    [cmp] = data["comparisons"]
    assert cmp["overall"]["difference"] == pytest.approx(-0.25) and cmp["overall"]["high"] < 0
    assert client.get("/compare.json", params={"run": runs[0]}).status_code == 400
    assert "Plotly.newPlot" in client.get("/compare", params=[("run", runs[0]), ("run", runs[1])]).text


def test_fine_tuning_jobs_with_curves_and_checkpoints(tmp_path):
    store = Store()
    job = store.create_job(model="local/smollm2", method="reinforcement", training_file="t.jsonl", validation_file=None,
                           hyperparameters={}, grader=None, options={}, seed=0, suffix=None, metadata=None,
                           output_dir_for=lambda j: tmp_path / j)
    for step in (1, 2, 3):
        store.add_job_event(job["id"], f"step {step}", type="metrics",
                            data={"step": step, "total_steps": 3, "train_mean_reward": step / 4,
                                  "valid_loss": 1 / step})
    store.add_checkpoint(job["id"], 3, "ft:x:ckpt-step-3", str(tmp_path / "c3"), {"valid_loss": 0.33})
    with FakeOpenAI(responder=answer) as server:  # a validation run at step 3: 30 of 40 pass
        [val] = run_eval(eval_from_dict(triage()), ["openai/big"], store=store, options=RunOptions(base_url=server.url))
    store.add_job_event(job["id"], "Validation at step 3", data={"eval_run_id": val, "step": 3})
    store.close()
    client = TestClient(create_app(db_path()))
    assert client.get("/jobs.json").json()["jobs"][0]["id"] == job["id"]
    data = client.get(f"/jobs/{job['id']}.json").json()
    assert data["curves"]["train_mean_reward"] == {"step": [1, 2, 3], "value": [0.25, 0.5, 0.75]}
    assert data["curves"]["valid_loss"]["value"][0] == 1.0 and data["checkpoints"][0]["step"] == 3
    assert data["curves"]["validation pass rate"] == {"step": [3], "value": [0.75]}
    html = client.get(f"/jobs/{job['id']}").text
    assert "plot-2" in html and f'href="/runs/{val}"' in html


def test_viewer_is_read_only(client, runs):
    before = hashlib.sha256(db_path().read_bytes()).hexdigest()
    assert client.post("/").status_code == 405
    assert client.post(f"/runs/{runs[0]}.json").status_code == 405
    for url in ("/", f"/runs/{runs[0]}", f"/runs/{runs[0]}/items/3", f"/runs/{runs[0]}/progress.json"):
        assert client.get(url).status_code == 200
    assert hashlib.sha256(db_path().read_bytes()).hexdigest() == before
    store = Store.open_readonly(db_path())
    with pytest.raises(Exception, match="readonly"):
        store.conn.execute("DELETE FROM runs")


def test_a_running_run_reports_progress(runs):
    store = Store()
    store.conn.execute("UPDATE runs SET status = 'in_progress' WHERE id = ?", (runs[0],))
    store.conn.execute("DELETE FROM output_items WHERE run_id = ? AND idx >= 10", (runs[0],))
    store.close()
    client = TestClient(create_app(db_path()))
    run = client.get(f"/runs/{runs[0]}/progress.json").json()["run"]
    assert run["status"] == "in_progress" and run["progress"] == {"done": 10, "total": N}
    html = client.get("/").text
    assert f'data-poll="/runs/{runs[0]}/progress.json"' in html and "setInterval" in html


def test_a_run_whose_runner_died_shows_as_interrupted_without_a_write(runs):
    from gradeloop.store._runner import runner_identity

    dead = {**runner_identity(), "pid": 2**22 + 12345, "start": "1"}
    store = Store()
    store.conn.execute("UPDATE runs SET status = 'in_progress', runner = ? WHERE id = ?", (json.dumps(dead), runs[0]))
    store.close()
    run = TestClient(create_app(db_path())).get(f"/runs/{runs[0]}/progress.json").json()["run"]
    assert run["status"] == "interrupted"
    assert Store.open_readonly(db_path()).get_run(runs[0])["status"] == "in_progress"


def test_finished_runs_summaries_are_cached_until_a_resume_changes_them(runs):
    from gradeloop.view._data import SummaryCache

    cache, calls = SummaryCache(size=2), []
    finished = {"id": "r", "status": "completed", "finished_at": 1.0}
    assert cache.get(finished, (), lambda: calls.append(1) or {"n": 1}) == {"n": 1}
    assert cache.get(finished, (), lambda: calls.append(1) or {"n": 2}) == {"n": 1} and len(calls) == 1
    assert cache.get({**finished, "finished_at": 2.0}, (), lambda: {"n": 3}) == {"n": 3}
    assert cache.get({**finished, "status": "in_progress"}, (), lambda: {"n": 4}) == {"n": 4}
    assert len(cache.entries) == 2

    client = TestClient(create_app(db_path()))
    assert client.get(f"/runs/{runs[0]}.json").json()["run"]["progress"]["done"] == N
    store = Store()
    store.conn.execute("DELETE FROM output_items WHERE run_id = ? AND idx >= 35", (runs[0],))
    store.set_run_status(runs[0], "in_progress")  # a resume
    assert client.get(f"/runs/{runs[0]}.json").json()["run"]["progress"]["done"] == 35
    store.set_run_status(runs[0], "completed")
    store.close()
    assert client.get(f"/runs/{runs[0]}.json").json()["run"]["progress"]["done"] == 35


# -- keyset paging over thousands of items -----------------------------------------------------

def big_run(n: int, epochs: int = 1) -> str:
    """A run of ``n`` items × ``epochs`` with samples and scores inserted directly."""
    store = Store()
    definition = triage(1)
    eval_id = store.add_eval(definition)
    rows = ((i, {"q": f"q{i}", "group": ["a", "b", "c"][i % 3]}, None, None, None) for i in range(n))
    run_id = store.create_run(eval_id=eval_id, model="openai/big", name=None, data_source=None,
                              config={"epochs": epochs}, rows=rows)
    now = time.time()
    units = [(i, e) for i in range(n) for e in range(epochs)]
    status = {u: ("error" if u[0] % 97 == 0 else "pass" if (u[0] + u[1]) % 4 else "fail") for u in units}
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO samples (run_id, idx, epoch, status, model, input, output, latency_ms, cached, created_at)"
            " VALUES (?, ?, ?, 'ok', 'openai/big', '[]', ?, 5, 0, ?)",
            [(run_id, i, e, json.dumps({"role": "assistant", "content": f"answer {i}/{e}"}), now) for i, e in units])
        store.conn.executemany(
            "INSERT INTO scores VALUES (?, ?, ?, 0, 'says yes', 'string_check', 'h', ?, ?, '{}', ?)",
            [(run_id, i, e, float(status[(i, e)] == "pass"), int(status[(i, e)] == "pass"), now) for i, e in units])
        store.conn.executemany("INSERT INTO output_items VALUES (?, ?, ?, ?, ?, ?)",
                               [(f"oi_{i}_{e}", run_id, i, e, status[(i, e)], int(now)) for i, e in units])
    store.close()
    return run_id


def walk(client, run_id: str, **params) -> list[tuple[int, int]]:
    seen, after = [], None
    while True:
        page = client.get(f"/runs/{run_id}.json", params={"limit": 500, "after": after, **params}).json()["items"]
        seen += [(r["index"], r["epoch"]) for r in page["rows"]]
        assert len(page["rows"]) <= 500
        after = page["next"]
        if after is None:
            return seen


def test_keyset_paging_returns_every_item_once():
    run_id = big_run(3000)
    client = TestClient(create_app(db_path()))
    assert walk(client, run_id) == [(i, 0) for i in range(3000)]
    failed = walk(client, run_id, status="fail")
    assert failed == [(i, 0) for i in range(3000) if i % 4 == 0 and i % 97]
    assert walk(client, run_id, field="group", value="b", status="error") == \
        [(i, 0) for i in range(3000) if i % 3 == 1 and i % 97 == 0]


def test_keyset_paging_across_epochs():
    run_id = big_run(700, epochs=3)
    client = TestClient(create_app(db_path()))
    assert walk(client, run_id) == [(i, e) for i in range(700) for e in range(3)]
    assert client.get(f"/runs/{run_id}/items/5.json", params={"epoch": 2}).json()["output"] == "answer 5/2"


def test_store_pages_read_only_the_rows_they_return():
    run_id = big_run(2000)
    store = Store.open_readonly(db_path())
    statements = []
    store.conn.set_trace_callback(statements.append)
    page = store.output_items_page(run_id, after=(1000, 0), limit=3)
    assert [p["index"] for p in page] == [1001, 1002, 1003] and page[0]["scores"][0]["name"] == "says yes"
    assert not any("OFFSET" in s.upper() for s in statements)
    plan = " ".join(r[3] for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT o.id FROM output_items o WHERE o.run_id = ? AND (o.idx, o.epoch) > (?, ?)"
        " ORDER BY o.idx, o.epoch LIMIT 3", (run_id, 1000, 0)))
    assert "USING INDEX" in plan and "TEMP B-TREE" not in plan


# -- the token, off loopback -------------------------------------------------------------------

def test_token_is_required_and_checked(client, runs):
    Store().close()
    gated = TestClient(create_app(db_path(), token="s3cret-token"))
    assert gated.get("/index.json").status_code == 401
    assert gated.get("/index.json", params={"token": "wrong"}).status_code == 401
    assert gated.get("/index.json", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    fresh = TestClient(create_app(db_path(), token="s3cret-token"))
    response = fresh.get("/", params={"token": "s3cret-token"})
    assert response.status_code == 200 and "gradeloop_view_token" in response.headers["set-cookie"]
    assert fresh.get(f"/runs/{runs[0]}.json").status_code == 200  # the cookie carries it


def test_loopback_viewer_refuses_other_host_names(runs):
    Store().close()
    app = create_app(db_path(), allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1:8484").get("/index.json").status_code == 200
    assert TestClient(app, base_url="http://rebound.example:8484").get("/index.json").status_code == 400


def test_cli_refuses_a_public_host_without_a_token():
    assert run_cli("view").returncode == 2  # no store yet: nothing to view
    Store().close()
    result = run_cli("view", "--host", "0.0.0.0", "--port", "18484")
    assert result.returncode == 2 and "--token" in result.stderr
    assert run_cli("view", "--port", "0").returncode == 2


def test_cli_serves_the_viewer(runs):
    import socket
    import subprocess
    import sys
    import urllib.request

    Store().close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gradeloop", "view", "--port", str(port), "--token", "tok"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while True:  # until it listens; a viewer that never starts exits (pytest-timeout catches a hang)
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/index.json",
                                                 headers={"Authorization": "Bearer tok"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    data = json.loads(response.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        assert {r["id"] for r in data["evals"][0]["runs"]} == set(runs)
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/index.json", timeout=5)
    finally:
        proc.terminate()
        proc.wait(30)


# -- in a real headless Chromium ---------------------------------------------------------------

def test_browser_run_item_and_compare_pages_render_offline(runs):
    from browser_util import browser, open_page, plots_drawn

    from gradeloop.view import BackgroundViewer

    Store().close()
    with BackgroundViewer(db_path()) as viewer, browser() as b:
        run = open_page(b, f"{viewer.url}/runs/{runs[0]}")
        plots_drawn(run.page, 2)  # per criterion, per field
        assert run.page.locator("table").nth(1).inner_text().count("says yes") == 1
        run.page.select_option("select[name=status]", "fail")
        run.page.click("button[type=submit]")
        run.page.wait_for_url("**status=fail**")
        assert run.page.locator("#items td a").first.inner_text() == "30"
        run.page.locator("#items td a").first.click()
        run.page.wait_for_url("**/items/30**")
        assert "Model calls" in run.page.content()
        run.assert_clean()
        cmp = open_page(b, f"{viewer.url}/compare?run={runs[0]}&run={runs[1]}")
        plots_drawn(cmp.page, 1)
        assert cmp.page.locator("tr.flip").count() == 10
        cmp.assert_clean()


def test_browser_shows_live_progress_without_reloading(runs):
    from browser_util import browser, open_page

    from gradeloop.view import BackgroundViewer

    store = Store()
    store.conn.execute("UPDATE runs SET status = 'in_progress' WHERE id = ?", (runs[0],))
    saved = store.conn.execute("SELECT * FROM output_items WHERE run_id = ? AND idx >= 10", (runs[0],)).fetchall()
    store.conn.execute("DELETE FROM output_items WHERE run_id = ? AND idx >= 10", (runs[0],))
    with BackgroundViewer(db_path()) as viewer, browser() as b:
        home = open_page(b, viewer.url)
        row = home.page.locator(f'tr[data-poll="/runs/{runs[0]}/progress.json"]')
        assert row.locator(".progress").inner_text() == f"10 / {N}"
        home.page.evaluate("window.loadedOnce = true")
        with store.transaction():
            store.conn.executemany("INSERT INTO output_items VALUES (?, ?, ?, ?, ?, ?)", [tuple(r) for r in saved])
            store.conn.execute("UPDATE runs SET status = 'completed' WHERE id = ?", (runs[0],))
        home.page.wait_for_function(
            f"document.querySelector('tr td .progress') && [...document.querySelectorAll('.progress')]"
            f".some(e => e.textContent === '{N} / {N}')", timeout=10_000)
        assert home.page.evaluate("window.loadedOnce") is True  # the same page, not a reload
        assert "completed" in home.page.locator("tr", has=home.page.locator(f"text={N} / {N}")).first.inner_text()
        home.assert_clean()
    store.close()


def test_browser_watch_catches_a_request_off_the_machine():
    from browser_util import browser, open_page

    with browser() as b:
        watched = open_page(b, "data:text/html,<script src='https://cdn.example.invalid/plotly.js'></script>")
        with pytest.raises(AssertionError):
            watched.assert_clean()
        assert "https://cdn.example.invalid/plotly.js" in watched.urls


def test_item_page_shows_a_judges_reasoning_and_a_graders_error():
    definition = triage(3)
    definition["testing_criteria"] = [
        {"type": "score_model", "name": "judge", "model": "judge-model", "pass_threshold": 1,
         "input": [{"role": "user", "content": "judge {{ sample.output_text }}"}]}]

    def respond(body):
        text = body["messages"][-1]["content"]
        if body["model"] != "judge-model":
            return "no" if text == "q2" else "yes"
        if text == "judge no":
            return "this is not JSON"
        return '{"result": 1, "steps": [{"description": "reads the answer", "conclusion": "it says yes, <ok>"}]}'

    with FakeOpenAI(responder=respond) as server:
        [run_id] = run_eval(eval_from_dict(definition), ["openai/big"], options=RunOptions(base_url=server.url))
    Store().close()
    client = TestClient(create_app(db_path()))
    data = client.get(f"/runs/{run_id}/items/1.json").json()
    [judge] = data["scores"]
    assert judge["result"]["details"]["steps"][0]["conclusion"] == "it says yes, <ok>"
    assert {c["purpose"] for c in data["calls"]} == {"sample", "grader"}
    assert "it says yes, &lt;ok&gt;" in client.get(f"/runs/{run_id}/items/1").text
    [broken] = client.get(f"/runs/{run_id}/items/2.json").json()["scores"]
    raised = [k for k, v in broken["result"]["errors"].items() if v is True]
    assert raised and raised[0] in client.get(f"/runs/{run_id}/items/2").text


def test_browser_with_a_token_loads_every_asset_through_the_cookie(runs):
    from browser_util import browser, open_page, plots_drawn

    from gradeloop.view import BackgroundViewer

    Store().close()
    with BackgroundViewer(db_path(), token="t0ken") as viewer, browser() as b:
        denied = open_page(b, f"{viewer.url}/runs/{runs[0]}")
        assert "needs its token" in denied.page.content()
        run = open_page(b, f"{viewer.url}/runs/{runs[0]}?token=t0ken")
        plots_drawn(run.page, 2)  # plotly.js came through the cookie
        run.page.locator("#items td a").first.click()
        run.page.wait_for_url("**/items/0")
        assert "Model calls" in run.page.content()
        run.assert_clean()


def test_browser_job_page_draws_its_curves(tmp_path):
    from browser_util import browser, open_page, plots_drawn

    from gradeloop.view import BackgroundViewer

    store = Store()
    job = store.create_job(model="local/smollm2", method="supervised", training_file="t.jsonl", validation_file=None,
                           hyperparameters={}, grader=None, options={}, seed=0, suffix=None, metadata=None,
                           output_dir_for=lambda j: tmp_path / j)
    for step in range(1, 6):
        store.add_job_event(job["id"], f"step {step}", type="metrics",
                            data={"step": step, "total_steps": 5, "train_loss": 2 / step, "valid_loss": 2.5 / step})
    store.close()
    with BackgroundViewer(db_path()) as viewer, browser() as b:
        jobs = open_page(b, f"{viewer.url}/jobs")
        jobs.page.click(f"text={job['id']}")
        plots_drawn(jobs.page, 2)
        jobs.assert_clean()
