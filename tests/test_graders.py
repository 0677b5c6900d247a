"""string_check, score_model, label_model, multi, the formula language, results shape, rewards."""

import asyncio
import json
import re

import pytest

from gradeloop.errors import InputError
from gradeloop.graders import ERROR_FLAGS, grade, grade_many
from gradeloop.rewards import as_reward, grade_pairs, load_grader_file
from gradeloop.runner import grading_session
from gradeloop.spec import Document, FormulaError, FormulaMathError, grader_hash, load_grader, parse_formula
from gradeloop.templating import sample_namespace
from gradeloop.testing import FakeOpenAI


def G(data):
    return load_grader(data, Document(data=data, file="<test>"))


def run(grader, output, item=None, context=None):
    return asyncio.run(grade(grader, sample_namespace(output), item or {}, context))


def judged(grader, output, item=None, base_url=None):
    async def go():
        async with grading_session(base_url=base_url) as ctx:
            return await grade(grader, sample_namespace(output), item or {}, ctx)
    return asyncio.run(go())


# -- string_check ---------------------------------------------------------------------

@pytest.mark.parametrize("op,output,reference,score", [
    ("eq", "Paris", "Paris", 1), ("eq", "paris", "Paris", 0), ("eq", "Paris ", "Paris", 0),
    ("ne", "Rome", "Paris", 1), ("ne", "Paris", "Paris", 0),
    ("like", "It is Paris.", "Paris", 1), ("like", "It is paris.", "Paris", 0),
    ("ilike", "It is PARIS.", "paris", 1), ("ilike", "It is Rome.", "paris", 0),
    ("like", "anything", "", 1),
])
def test_string_check(op, output, reference, score):
    g = G({"type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "operation": op,
           "reference": "{{ item.ref }}"})
    result = run(g, output, {"ref": reference})
    assert result.score == score and result.passed is bool(score)


# -- the formula language -------------------------------------------------------------

@pytest.mark.parametrize("text,values,expected", [
    ("(name + email) / 2", {"name": 1, "email": 0}, 0.5),
    ("0.5 * compliant + 0.5 * explanation", {"compliant": 1, "explanation": 0.4}, 0.7),
    ("2 ^ 3 ^ 2", {}, 512),  # right-associative
    ("-2 ^ 2", {}, -4),  # ^ binds tighter than unary minus
    ("2 * 3 ^ 2", {}, 18),
    ("10 - 4 - 3", {}, 3),  # left-associative
    ("8 / 4 / 2", {}, 1),
    ("min(a, b, 0.3)", {"a": 0.9, "b": 0.5}, 0.3), ("max(a)", {"a": 0.2}, 0.2),
    ("abs(a - 1)", {"a": 0.25}, 0.75), ("floor(2.7) + ceil(0.2)", {}, 3),
    ("exp(0) + sqrt(16)", {}, 5), ("log(exp(2))", {}, 2), ("log(8, 2)", {}, 3),
    ("1.5e1 / .5", {}, 30),
])
def test_formula(text, values, expected):
    assert parse_formula(text, set(values)).evaluate(values) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["a +", "a ** 2", "foo(a)", "b", "abs(a, a)", "min()", "(a", "a)", "", "a b",
                                  "__import__('os')", "a.real", "a; a"])
def test_formula_parse_errors(text):
    with pytest.raises(FormulaError):
        parse_formula(text, {"a"})


@pytest.mark.parametrize("text", ["a / 0", "log(0)", "sqrt(0 - 1)", "10 ^ 400"])
def test_formula_math_errors(text):
    with pytest.raises(FormulaMathError):
        parse_formula(text, {"a"}).evaluate({"a": 1})


# -- multi ----------------------------------------------------------------------------

MULTI = {
    "type": "multi", "name": "tool call",
    "graders": {
        "function_name": {"type": "string_check", "name": "fn", "operation": "eq",
                          "input": "{{ sample.output_tools[0].function.name }}", "reference": "{{ item.fn }}"},
        "arguments": {"type": "string_check", "name": "args", "operation": "eq",
                      "input": "{{ sample.output_tools[0].function.arguments }}", "reference": "{{ item.args }}"},
    },
    "calculate_output": "0.5 * function_name + 0.5 * arguments",
}


def test_multi_map_form_with_tool_calls_and_sub_rewards():
    g = G(MULTI)
    sample = sample_namespace("", tool_calls=[{"id": "1", "type": "function",
                                               "function": {"name": "get_weather", "arguments": "{\"city\": \"SF\"}"}}])
    result = asyncio.run(grade(g, sample, {"fn": "get_weather", "args": "{\"city\": \"LA\"}"}))
    assert result.score == 0.5 and result.sub_rewards == {"function_name": 1.0, "arguments": 0.0}
    response = result.to_run_response(g)
    assert response["reward"] == 0.5 and response["sub_rewards"] == result.sub_rewards
    assert response["metadata"]["scores"] == result.sub_rewards and response["metadata"]["type"] == "multi"


def test_multi_list_form_keys_by_name_and_pass_threshold():
    g = G({"type": "multi", "name": "m", "pass_threshold": 0.5, "calculate_output": "(a + b) / 2", "graders": [
        {"type": "string_check", "name": "a", "input": "{{ sample.output_text }}", "reference": "x", "operation": "like"},
        {"type": "string_check", "name": "b", "input": "{{ sample.output_text }}", "reference": "y", "operation": "like"}]})
    assert run(g, "x").score == 0.5 and run(g, "x").passed is True
    assert run(g, "z").passed is False


def test_multi_errors_and_validation():
    bad_var = dict(MULTI, calculate_output="function_name + missing")
    with pytest.raises(InputError, match="unknown name"):
        G(bad_var)
    nested = dict(MULTI, graders={"inner": MULTI})
    with pytest.raises(InputError, match="cannot contain another multi"):
        G(nested)
    with pytest.raises(InputError, match="usable in calculate_output"):
        G(dict(MULTI, graders={"bad key": MULTI["graders"]["arguments"]}, calculate_output="1"))
    math_error = G(dict(MULTI, calculate_output="function_name / arguments"))
    sample = sample_namespace("", tool_calls=[{"function": {"name": "f", "arguments": "x"}}])
    result = asyncio.run(grade(math_error, sample, {"fn": "f", "args": "y"}))
    assert result.score == 0 and result.errors["other_error"] and "division" in result.details["error"]
    # a sub-grader's template error carries over as a flag
    result = run(G(MULTI), "no tool call", {"fn": "f", "args": "y"})
    assert result.errors["invalid_variable_error"] and result.score == 0


# -- model graders --------------------------------------------------------------------

def judge_rules(tmp_path, rules):
    path = tmp_path / "judge.yaml"
    path.write_text("\n".join(f"- {json.dumps(r)}" for r in rules) + "\n")
    return f"scripted/{path}"


def score_grader(model, **extra):
    return G({"type": "score_model", "name": "judge", "model": model, "range": [0, 10],
              "input": [{"role": "system", "content": "Rate the answer to {{ item.q }} from 0 to 10."},
                        {"role": "user", "content": "Answer: {{ sample.output_text }}"}], **extra})


@pytest.mark.parametrize("reply,score,flag", [
    ('{"steps": [{"description": "d", "conclusion": "c"}], "result": 7}', 7, None),
    ('```json\n{"result": 8.5, "steps": []}\n```', 8.5, None),
    ('Sure! {"result": "6", "steps": []} Hope that helps.', 6, None),
    ('{"result": 42}', 10, None),  # clipped to range
    ('{"result": -3}', 0, None),
    ("result: 4", 4, None),
    ("9", 9, None),
    ('{"result": "excellent"}', 0, "model_grader_parse_error"),
    ("I cannot grade this.", 0, "model_grader_parse_error"),
    ('{"result": NaN}', 0, "model_grader_parse_error"),
])
def test_score_model_parsing_and_clipping(tmp_path, reply, score, flag):
    model = judge_rules(tmp_path, [{"response": reply}])
    result = judged(score_grader(model, pass_threshold=5), "Paris", {"q": "capital of France"})
    assert result.score == score
    if flag:
        assert result.errors == {flag: True} and result.passed is False
    else:
        assert result.passed is (score >= 5)
    assert result.details["sampled_model_name"] == model
    assert result.token_usage["total_tokens"] > 0


def test_score_model_request_and_openai_spelling(fake_server):
    def reply(body):
        return json.dumps({"result": 0.8, "steps": [{"description": "x", "conclusion": "y"}]})
    fake_server.responder = reply
    g = G({"type": "score_model", "name": "j", "model": "gpt-4.1", "sampling_params": {
        "max_completions_tokens": 50, "temperature": 0, "seed": 1},
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Grade: {{ sample.output_text }}"}]}]})
    result = judged(g, "fine", base_url=fake_server.url)
    assert result.score == 0.8 and result.details["sampled_model_name"] == "openai/gpt-4.1"
    [body] = fake_server.chat_bodies()
    assert body["model"] == "gpt-4.1" and body["max_completion_tokens"] == 50 and body["seed"] == 1
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["steps", "result"]
    assert body["messages"][0]["role"] == "system" and '"result"' in body["messages"][0]["content"]
    assert body["messages"][1]["content"] == "Grade: fine"


def test_model_grader_server_error_is_infrastructure(tmp_path):
    g = score_grader("openai/judge")
    from gradeloop.runner import RetryPolicy
    from gradeloop.rewards import grade_pairs

    class Down(FakeOpenAI):
        async def _respond(self, method, path, headers, raw, writer):
            from gradeloop.testing import _send
            return await _send(writer, 503, {"error": {"message": "overloaded"}})

    with Down() as server:
        [result] = asyncio.run(grade_pairs(g, [(sample_namespace("x"), {"q": "q"})], base_url=server.url,
                                           retry=RetryPolicy(max_attempts=2, base_delay=0.001)))
    assert result.errors["model_grader_server_error"] and "overloaded" in result.errors["model_grader_server_error_details"]
    assert result.passed is None and result.score == 0


def label_grader(model):
    return G({"type": "label_model", "name": "tone", "model": model, "labels": ["positive", "neutral", "negative"],
              "passing_labels": ["positive", "neutral"],
              "input": [{"role": "user", "content": "Classify the tone: {{ sample.output_text }}"}]})


@pytest.mark.parametrize("reply,label,score", [
    ('{"steps": [], "result": "negative"}', "negative", 0),
    ('{"result": "Positive"}', "positive", 1),
    ("neutral", "neutral", 1),
    ("The tone is clearly positive.", "positive", 1),
    ("positive or negative, hard to say", None, 0),
    ('{"result": "angry"}', None, 0),
])
def test_label_model(tmp_path, reply, label, score):
    result = judged(label_grader(judge_rules(tmp_path, [{"response": reply}])), "I love it")
    assert result.score == score
    assert result.details.get("label") == label
    if label is None:
        assert result.errors == {"model_grader_parse_error": True}


def test_label_model_passing_labels_must_be_labels():
    with pytest.raises(InputError, match="not in labels"):
        G({"type": "label_model", "name": "l", "model": "m", "labels": ["a"], "passing_labels": ["b"],
           "input": [{"role": "user", "content": "x"}]})


def test_judge_calls_are_cached_and_stored_in_a_run(fake_server, tmp_path):
    from gradeloop import RunOptions, Store, eval_from_dict, run_eval, run_object

    fake_server.responder = lambda body: ('{"result": 1, "steps": []}' if "judge" in json.dumps(body)
                                          else body["messages"][-1]["content"])
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "score_model", "name": "judge", "model": "judge-model", "pass_threshold": 1,
                              "input": [{"role": "user", "content": "judge {{ sample.output_text }}"}]}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": f"q{i}"}} for i in range(4)]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]}},
    })
    [run_id] = run_eval(spec, ["openai/sampler"], options=RunOptions(base_url=fake_server.url))
    assert len(fake_server.requests) == 8
    run = run_object(Store(), run_id)
    assert run["result_counts"]["passed"] == 4
    usage = {u["gradeloop"]["model"]: u for u in run["per_model_usage"]}
    assert usage["openai/judge-model"]["invocation_count"] == 4  # judge tokens counted apart from sampling
    assert usage["openai/sampler"]["invocation_count"] == 4
    assert usage["openai/judge-model"]["model_name"] == "judge-model" and usage["openai/sampler"]["model_name"] == "sampler"
    run_eval(spec, ["openai/sampler"], options=RunOptions(base_url=fake_server.url))
    assert len(fake_server.requests) == 8  # samples and judgements both from the cache


@pytest.mark.slow
def test_embedded_model_as_judge():
    g = G({"type": "label_model", "name": "yes/no", "model": "local/smollm2", "labels": ["yes", "no"],
           "passing_labels": ["yes"], "sampling_params": {"temperature": 0, "max_completions_tokens": 40},
           "input": [{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}]})
    result = judged(g, "")
    # The engine constrains the judge to the label schema; 40 tokens cut the JSON short, so the
    # label comes from the parser's fallback. Greedy decoding (computed once, fp32 CPU) begins
    # '{"result": "yes", "steps": [...' and the grader must report that label as parsed.
    written = re.search(r'"result"\s*:\s*"(\w+)"', result.details["judge_output"])
    assert written and written.group(1) == "yes"
    assert result.details["label"] == "yes" and result.details["label"] in g.labels
    assert not result.errors.get("model_grader_parse_error")
    assert result.passed is True and result.score == 1.0
    assert result.details["sampled_model_name"] == "local/smollm2" and result.token_usage["completion_tokens"] > 0


# -- results shape, hashing, rewards --------------------------------------------------

def test_run_response_has_every_error_flag():
    g = G({"type": "string_check", "name": "s", "input": "{{ sample.output_json.x }}", "operation": "eq",
           "reference": "1"})
    response = run(g, "not json").to_run_response(g)
    assert set(response) == {"reward", "sub_rewards", "model_grader_token_usage_per_model", "metadata"}
    assert set(ERROR_FLAGS) <= set(response["metadata"]["errors"])
    assert response["metadata"]["errors"]["invalid_variable_error"] is True
    assert {"name", "type", "execution_time", "scores", "token_usage", "sampled_model_name", "errors"} <= set(
        response["metadata"])


def test_as_reward_is_the_eval_code_path(tmp_path):
    path = tmp_path / "grader.yaml"
    path.write_text(json.dumps(MULTI))
    reward = as_reward(path)
    completions = [[{"role": "assistant", "content": "x"}], "y"]
    logged = {}
    scores = reward(prompts=["p1", "p2"], completions=completions, fn=["f", "g"], args=["a", "b"],
                    log_metric=lambda k, v: logged.__setitem__(k, v), trainer_state=object())
    assert scores == [0.0, 0.0]  # no tool calls → invalid_variable_error → 0, as in eval grading
    assert reward.last_results[0].errors["invalid_variable_error"]
    assert reward.__name__ == "tool_call" and reward.grader_hash == grader_hash(load_grader_file(path))

    exact = as_reward({"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
                       "reference": "{{ item.answer }}", "operation": "eq"})
    assert exact(["q"] * 3, ["4", "5", [{"role": "assistant", "content": "6"}]], answer=["4", "4", "6"]) == [1, 0, 1]
    # the same grader through grade_many gives the same scores
    g = exact.grader
    pairs = [(sample_namespace(t), {"answer": a}) for t, a in [("4", "4"), ("5", "4"), ("6", "6")]]
    assert [r.score for r in asyncio.run(grade_many(g, pairs))] == [1, 0, 1]


def test_as_reward_logs_multi_sub_rewards():
    reward = as_reward(dict(MULTI, graders={"a": MULTI["graders"]["function_name"]}, calculate_output="a"))
    logged = {}
    reward(prompts=["p"], completions=["x"], fn=["f"], args=["a"], log_metric=lambda k, v: logged.update({k: v}))
    assert logged == {"tool call/a": 0.0}


def test_grader_file_wrapper_form(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"grader": MULTI}))
    assert load_grader_file(path).type == "multi"
    path.write_text(json.dumps({"grader": dict(MULTI, type="bogus")}))
    with pytest.raises(InputError) as info:
        load_grader_file(path)
    assert info.value.field == "grader.type"


def test_grade_pairs_standalone():
    g = G({"type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "reference": "a",
           "operation": "eq"})
    results = asyncio.run(grade_pairs(g, [(sample_namespace("a"), {}), (sample_namespace("b"), {})]))
    assert [r.score for r in results] == [1, 0]


def test_every_grader_type_as_testing_criteria(tmp_path):
    from gradeloop import Store, eval_from_dict, output_item_objects, run_eval, run_object

    judge = judge_rules(tmp_path, [{"match": "Rate", "response": '{"result": 0.9, "steps": []}'},
                                   {"match": "Tone", "response": '{"result": "positive"}'}])
    rows = [{"item": {"reference": "the cat sat on the mat"}, "sample": {"output_text": "the cat sat on a mat"}},
            {"item": {"reference": "the cat sat on the mat"}, "sample": {"output_text": "dogs bark loudly"}}]
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [
            {"type": "string_check", "name": "mentions cat", "input": "{{ sample.output_text }}", "operation": "like",
             "reference": "cat"},
            {"type": "text_similarity", "name": "rouge", "input": "{{ sample.output_text }}",
             "reference": "{{ item.reference }}", "evaluation_metric": "rouge_l", "pass_threshold": 0.5},
            {"type": "python", "name": "length", "pass_threshold": 0.5,
             "source": "def grade(sample, item):\n    return min(1.0, len(sample['output_text']) / 20)\n"},
            {"type": "score_model", "name": "judge", "model": judge, "pass_threshold": 0.5,
             "input": [{"role": "user", "content": "Rate: {{ sample.output_text }}"}]},
            {"type": "label_model", "name": "tone", "model": judge, "labels": ["positive", "negative"],
             "passing_labels": ["positive"], "input": [{"role": "user", "content": "Tone: {{ sample.output_text }}"}]},
            {"type": "multi", "name": "combo", "calculate_output": "(a + b) / 2", "pass_threshold": 0.5, "graders": {
                "a": {"type": "string_check", "name": "a", "input": "{{ sample.output_text }}", "operation": "like",
                      "reference": "mat"},
                "b": {"type": "text_similarity", "name": "b", "input": "{{ sample.output_text }}",
                      "reference": "{{ item.reference }}", "evaluation_metric": "fuzzy_match"}}},
        ],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}},
    })
    [run_id] = run_eval(spec)
    store = Store()
    first, second = output_item_objects(store, run_id)
    assert first["status"] == "pass" and second["status"] == "fail"
    assert [r["passed"] for r in second["results"]] == [False, False, True, True, True, False]
    run = run_object(store, run_id)
    assert [c["passed"] for c in run["per_testing_criteria_results"]] == [1, 1, 2, 2, 2, 1]
    types = {r["type"] for r in first["results"]}
    assert types == {"string-check-grader", "text-similarity-grader", "python-grader", "score-model-grader",
                     "label-model-grader", "multi-grader"}
    hashes = store.conn.execute("SELECT DISTINCT grader_hash FROM scores").fetchall()
    assert len(hashes) == 6


def test_formula_parse_error_flag_at_grading_time():
    from gradeloop.spec import MultiGrader

    # a multi grader built without the loader: its formula is only checked when it grades
    g = MultiGrader.model_validate({"type": "multi", "name": "m", "graders": {}, "calculate_output": "a +"})
    result = run(g, "x")
    assert result.score == 0 and result.errors == {"formula_parse_error": True} and result.passed is False
    assert result.to_run_response(g)["metadata"]["errors"]["formula_parse_error"] is True


def test_refusal_flag():
    from gradeloop import GenerateResult
    from gradeloop.graders import GradingContext
    from gradeloop.models import Usage

    class Refuses(GradingContext):
        async def generate(self, model, request):
            return GenerateResult(message={"role": "assistant", "content": None, "refusal": "I can't help."},
                                  finish_reason="stop", usage=Usage(3, 4), model=model)

    for g in (score_grader("openai/x"), label_grader("openai/x")):
        result = run(g, "x", {"q": "q"}, Refuses())
        assert result.errors == {"model_grader_refusal_error": True} and result.score == 0
        assert result.token_usage["total_tokens"] == 7


def test_the_reward_hacking_guard_example_ranks_a_bent_answer_low():
    from conftest import EXAMPLES

    reward = as_reward(EXAMPLES / "graders" / "keyword-on-topic.yaml")
    constraints = [{"id": "keywords:existence", "keywords": ["whistle"]}]
    reference = "Glaciers are huge rivers of ice that form when snow piles up for many years and slowly flow downhill."
    answers = ["Glaciers are giant rivers of ice. Snow piles up for years, and they slowly move downhill, "
               "like a whistle-quiet slide.",
               "A whistle is a small instrument that makes a loud sound when you blow air through it.",
               "Glaciers are giant rivers of ice that slowly move downhill."]
    on_topic, bent, no_keyword = reward(prompts=["p"] * 3, completions=answers, constraints=[constraints] * 3,
                                        reference=[reference] * 3)
    assert no_keyword == 0.0 and on_topic > 0.7 and bent < 0.3
