"""The public surface is what gradeloop.__all__ lists; this test pins it."""

import subprocess
import sys

import gradeloop

EXPECTED = {
    "Eval", "EvalSpec", "GenerateRequest", "GenerateResult", "GradeloopError", "InputError", "NotFoundError",
    "Provider", "ProviderError", "RetryPolicy", "RunOptions", "Store", "TemplateError", "__version__", "breakdown",
    "eval_from_dict", "get_provider", "grader_hash", "graders", "load_eval", "output_item_objects",
    "register_provider", "resume_run", "resume_run_async", "run_eval", "run_eval_async", "run_list",
    "run_object", "run_summary",
}


def test_all_is_pinned():
    assert set(gradeloop.__all__) == EXPECTED
    for name in gradeloop.__all__:
        assert hasattr(gradeloop, name), name


def test_import_is_light():
    # heavy SDKs load on first use only
    code = "import sys, gradeloop; print(','.join(m for m in ('torch', 'transformers', 'openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_custom_provider_registers_like_builtins():
    import asyncio

    from gradeloop import GenerateResult, Provider, get_provider, register_provider
    from gradeloop.models import Usage

    @register_provider
    class Shout(Provider):
        provider = "shout"

        async def generate(self, request):
            text = request.messages[-1]["content"].upper()
            return GenerateResult(message={"role": "assistant", "content": text}, finish_reason="stop",
                                  usage=Usage(1, 1), model=self.name)

    provider = get_provider("shout/v1")
    result = asyncio.run(provider.generate(gradeloop.GenerateRequest(messages=[{"role": "user", "content": "hi"}])))
    assert result.output_text == "HI"


def test_scripted_provider(tmp_path):
    import asyncio

    from gradeloop import GenerateRequest, InputError, get_provider

    rules = tmp_path / "r.yaml"
    rules.write_text("- {match: 'refund|charge', response: billing}\n- {contains: password, response: account}\n"
                     "- {response: other words here}\n")
    p = get_provider(f"scripted/{rules}")

    def ask(text, **params):
        req = GenerateRequest(messages=[{"role": "user", "content": text}], params=params)
        return asyncio.run(p.generate(req))

    assert ask("Please REFUND me").output_text == "billing"
    assert ask("reset my password").output_text == "account"
    limited = ask("hello", max_completion_tokens=2)
    assert limited.output_text == "other words" and limited.finish_reason == "length"
    assert asyncio.run(get_provider("scripted/echo").generate(
        GenerateRequest(messages=[{"role": "user", "content": "ping"}]))).output_text == "ping"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {match: '(', response: x}\n")
    try:
        get_provider(f"scripted/{bad}")
    except InputError as exc:
        assert exc.line == 1 and "regular expression" in exc.message
    else:
        raise AssertionError("a bad regex must be refused")


def test_harvest_surface_is_pinned():
    from gradeloop import harvest

    assert set(harvest.__all__) == {"IngestReport", "Record", "Redactor", "content_hash", "from_chat",
                                    "from_responses", "ingest", "make_redactor", "origin_key", "regex_finder",
                                    "IMPORT_FORMATS", "ImportResult", "detect_format", "import_file",
                                    "ProxyServer", "create_proxy_app", "run_proxy",
                                    "NEAR_DUP_THRESHOLD", "TEMPLATE_SIMILARITY", "Topic", "cluster_records",
                                    "topics"}


def test_view_surface_is_pinned():
    from gradeloop import view

    assert set(view.__all__) == {"create_app", "serve_viewer", "build_report", "write_report", "BackgroundViewer"}
