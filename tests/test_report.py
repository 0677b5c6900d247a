"""``gradeloop eval report``: one self-contained offline HTML file (issue 13, point 2)."""

import re

import pytest

from conftest import run_cli
from gradeloop import RunOptions, Store, eval_from_dict, run_eval
from gradeloop.testing import FakeOpenAI

pytest.importorskip("plotly")
from gradeloop.view._report import pareto_front, report_data  # noqa: E402

N = 40


def triage() -> dict:
    return {
        "name": "triage",
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "says yes", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "yes"}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": f"q{i}", "group": "easy" if i % 2 else "hard"}} for i in range(N)]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    }


LIMITS = {"gpt-4.1": 36, "gpt-4.1-mini": 35, "gpt-4.1-nano": 20}


def answer(body: dict) -> str:
    i = int(body["messages"][-1]["content"][1:])
    return "yes" if i < LIMITS[body["model"]] else f"no </script><script>alert({i})</script>"


@pytest.fixture
def runs() -> list[str]:
    with FakeOpenAI(responder=answer) as server:
        return run_eval(eval_from_dict(triage()), [f"openai/{m}" for m in LIMITS],
                        options=RunOptions(base_url=server.url))


def test_pareto_front():
    points = [(1.0, 0.9), (0.2, 0.88), (0.05, 0.5), (0.3, 0.7), (1.0, 0.8)]
    assert pareto_front(points) == [True, True, True, False, False]
    assert pareto_front([(0.0, 0.5), (0.0, 0.5)]) == [True, True]


def test_report_data_has_intervals_forest_pareto_and_flipped_items(runs):
    data = report_data(Store(), runs, by=["group"])
    assert [r["pass_rate"]["value"] for r in data["runs"]] == [36 / N, 35 / N, 20 / N]
    assert all(r["pass_rate"]["low"] < r["pass_rate"]["value"] < r["pass_rate"]["high"] for r in data["runs"])
    assert data["pareto"] == [True, True, True]  # each cheaper model is worse
    assert [c["b"]["run_id"] for c in data["comparisons"]] == runs[1:]
    assert data["comparisons"][1]["overall"]["difference"] == pytest.approx(-16 / N)
    assert [r["value"] for r in data["by"][0]["runs"][0]] == ["easy", "hard"]
    flipped = data["flipped"]
    assert flipped["flipped"] == 16 and [r["cells"][0]["index"] for r in flipped["rows"]] == list(range(20, 36))


def test_report_cli_writes_one_self_contained_file(runs, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("eval", "report", *runs, "--out", str(out), "--by", "group")
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert len(html) > 3_000_000  # plotly.js is inlined
    body = html.split("</head>", 1)[1]
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)=", html)  # nothing to load: all inline
    assert "//" not in re.sub(r"<pre>.*?</pre>", "", body, flags=re.S).replace("</", "")  # no URL in the body
    for plot_id in ("plot-criteria", "plot-by-0", "plot-forest", "plot-pareto", "plot-latency", "plot-scores-0"):
        assert f'id="{plot_id}"' in html
    assert "Flipped items: 16 of 40 shared" in html and "gpt-4.1-nano" in html
    assert "<script>alert(" not in body and "&lt;/script&gt;&lt;script&gt;alert(" in body  # outputs escaped


def test_report_bad_input_exits_2(runs, tmp_path):
    result = run_cli("eval", "report", runs[0], "--out", str(tmp_path / "missing" / "r.html"))
    assert result.returncode == 2 and "missing" in result.stderr
    result = run_cli("eval", "report", "evalrun_nope", "--out", str(tmp_path / "r.html"))
    assert result.returncode != 0 and "no run" in result.stderr


def test_report_renders_in_chromium_from_disk_offline(runs, tmp_path):
    from browser_util import browser, open_page, plots_drawn

    from gradeloop.view import write_report

    out = write_report(Store(), runs, tmp_path / "report.html", by=["group"])
    with browser() as b:
        report = open_page(b, out.as_uri())
        plots_drawn(report.page, 6)  # criteria, group, forest, Pareto, latency, scores
        assert report.page.locator("text=Flipped items: 16 of 40 shared").count() == 1
        report.assert_clean()
        assert all(u.startswith(("file:", "data:")) for u in report.urls)


def test_the_readme_worked_example(monkeypatch, tmp_path):
    """The README's three stand-in models on ticket triage: the figures it quotes."""
    from conftest import ROOT

    from gradeloop.decide import load_prices, recommend

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("GRADELOOP_PRICES", "examples/triage-models/prices.yaml")
    models = [f"scripted/examples/triage-models/{m}.yaml" for m in ("large", "mini", "nano")]
    runs = run_eval("examples/ticket-triage.yaml", models)
    store = Store()
    assert [store.result_counts(r)["passed"] for r in runs] == [48, 45, 19]
    wide = recommend(store, runs, baseline=runs[0], margin=0.15, prices=load_prices())
    assert wide.recommended["model"] == models[1] and "80% cheaper" in wide.sentence
    strict = recommend(store, runs, baseline=runs[0], margin=0.02, prices=load_prices())
    assert strict.recommended is None and strict.closest["model"] == models[1]
    data = report_data(store, runs, by=["correct_label"])
    assert data["pareto"] == [True, True, True] and data["flipped"]["flipped"] == 29
