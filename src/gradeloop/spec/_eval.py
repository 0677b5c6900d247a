"""Eval definitions: the body of OpenAI's create-eval plus a run ``data_source``.

:func:`load_eval` reads a YAML or JSON file, validates it, resolves its rows (inline,
from a JSONL file next to it) and checks every item against ``item_schema``. Every
error names the file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError, TemplateError
from ..templating import resolve, variables
from ._agent import AgentSpec, load_agent
from ._graders import GraderModel, load_grader, one_token_cap
from ._load import Document, format_loc, read_document, read_jsonl, validate_model

__all__ = [
    "EvalSpec",
    "Row",
    "SamplingParams",
    "CompletionsDataSource",
    "JsonlDataSource",
    "CustomDataSourceConfig",
    "TemplateMessages",
    "ItemReferenceMessages",
    "load_eval",
    "eval_from_dict",
    "parse_data_source",
    "parse_criteria",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FileContentSource(_Strict):
    """Rows inline in the definition."""

    type: Literal["file_content"]
    content: list[Any]


class FileSource(_Strict):
    """Rows in a JSONL file, its path relative to the eval file (a gradeloop addition)."""

    type: Literal["file"]
    path: str


class FileIdSource(_Strict):
    """An OpenAI file id: accepted by the schema so the error can explain what to do."""

    type: Literal["file_id"]
    id: str


class StoredLogsSource(BaseModel):
    """OpenAI's ``stored_completions`` / ``responses`` sources (queries over OpenAI's stored
    logs): accepted by the schema so the error can explain what to do."""

    model_config = ConfigDict(extra="allow")

    type: Literal["stored_completions", "responses"]


Source = FileContentSource | FileSource | FileIdSource | StoredLogsSource


class CustomDataSourceConfig(_Strict):
    """``data_source_config`` of type ``custom``.

    Accepts the create form (``item_schema``) and the stored form OpenAI returns
    (``schema`` with ``item`` and ``sample`` properties).
    """

    type: Literal["custom"]
    item_schema: dict[str, Any] | None = None
    include_sample_schema: bool = False
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    def effective_item_schema(self) -> dict[str, Any] | None:
        """The JSON Schema every item must satisfy, or None."""
        if self.item_schema is not None:
            return self.item_schema
        if self.schema_:
            return self.schema_.get("properties", {}).get("item")
        return None


class _BaseSamplingParams(_Strict):
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _token_cap(cls, data: Any) -> Any:
        return one_token_cap(data)


class SamplingParams(_BaseSamplingParams):
    """``sampling_params`` of a completions run, plus ``stop`` (a gradeloop addition)."""

    response_format: dict[str, Any] | None = None
    stop: list[str] | str | None = None

    def to_request(self) -> dict[str, Any]:
        """The params as a dict without unset values (what a provider receives)."""
        out = self.model_dump(exclude_none=True)
        if isinstance(out.get("stop"), str):
            out["stop"] = [out["stop"]]
        return out


class ResponsesSamplingParams(_BaseSamplingParams):
    """``sampling_params`` of a ``responses`` run; converted to chat form."""

    text: dict[str, Any] | None = None

    def to_chat(self) -> SamplingParams:
        """The same params in Chat Completions form."""
        fmt = (self.text or {}).get("format")
        response_format = None
        if fmt and fmt.get("type") == "json_schema":
            inner = {k: v for k, v in fmt.items() if k != "type"}
            response_format = {"type": "json_schema", "json_schema": inner}
        elif fmt and fmt.get("type") in ("json_object", "text"):
            response_format = {"type": fmt["type"]}
        tools = None
        if self.tools:
            tools = [_responses_tool_to_chat(t) for t in self.tools]
        return SamplingParams(
            temperature=self.temperature, top_p=self.top_p, seed=self.seed,
            max_completion_tokens=self.max_completion_tokens, response_format=response_format,
            tools=tools, reasoning_effort=self.reasoning_effort,
            tool_choice=_responses_choice_to_chat(self.tool_choice), parallel_tool_calls=self.parallel_tool_calls,
        )


def _responses_choice_to_chat(choice: Any) -> Any:
    """Responses names a function as ``{type: function, name}``, Chat Completions as
    ``{type: function, function: {name}}``; ``auto``, ``none`` and ``required`` are the same."""
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _responses_tool_to_chat(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function" and "function" not in tool:
        fn = {k: v for k, v in tool.items() if k in ("name", "description", "parameters", "strict")}
        return {"type": "function", "function": fn}
    return tool


class TemplateMessages(_Strict):
    """``input_messages`` of type ``template``: messages with ``{{ item.x }}`` references."""

    type: Literal["template"]
    template: list[dict[str, Any]]


class ItemReferenceMessages(_Strict):
    """``input_messages`` of type ``item_reference``: the item holds the message list."""

    type: Literal["item_reference"]
    item_reference: str


class JsonlDataSource(_Strict):
    """Rows ``{"item": …, "sample": …?}`` graded as they are: no model is called."""

    type: Literal["jsonl"]
    source: Source = Field(discriminator="type")


class CompletionsDataSource(_Strict):
    """Rows whose sample a model generates from ``input_messages``."""

    type: Literal["completions"]
    source: Source = Field(discriminator="type")
    input_messages: TemplateMessages | ItemReferenceMessages | None = Field(default=None, discriminator="type")
    model: str | None = None
    sampling_params: SamplingParams = Field(default_factory=SamplingParams)


class ResponsesDataSource(_Strict):
    """OpenAI's ``responses`` run data source, run through the Chat Completions path."""

    type: Literal["responses"]
    source: Source = Field(discriminator="type")
    input_messages: TemplateMessages | ItemReferenceMessages | None = Field(default=None, discriminator="type")
    model: str | None = None
    sampling_params: ResponsesSamplingParams = Field(default_factory=ResponsesSamplingParams)

    def to_completions(self) -> CompletionsDataSource:
        """The equivalent completions data source."""
        return CompletionsDataSource(
            type="completions", source=self.source, input_messages=self.input_messages,
            model=self.model, sampling_params=self.sampling_params.to_chat(),
        )


DataSource = JsonlDataSource | CompletionsDataSource | ResponsesDataSource


class _EvalBody(_Strict):
    name: str | None = None
    data_source_config: CustomDataSourceConfig
    testing_criteria: list[Any] = Field(min_length=1)
    data_source: DataSource | None = Field(default=None, discriminator="type")
    metadata: dict[str, Any] | None = None
    epochs: int = Field(default=1, ge=1)
    agent: Any = None  # gradeloop's agent block, validated by spec._agent
    # present when the file is an eval object fetched from OpenAI; ignored
    id: str | None = None
    object: str | None = None
    created_at: int | None = None


def _check_config_type(doc: Document) -> None:
    cfg = doc.data.get("data_source_config")
    if isinstance(cfg, dict) and cfg.get("type") in ("logs", "stored_completions"):
        raise doc.error(
            f"data_source_config type '{cfg['type']}' reads OpenAI's stored logs, which gradeloop cannot "
            "read; export them to JSONL (one {\"item\": {...}} per line), describe an item with "
            "{type: custom, item_schema: {...}} and use {type: file, path: rows.jsonl} as the run's source",
            ("data_source_config", "type"))


@dataclass
class Row:
    """One data-source row: its index, the item, a pre-made sample if any, and where it came from."""

    index: int
    item: dict[str, Any]
    sample: dict[str, Any] | None
    file: str
    line: int | None


@dataclass
class EvalSpec:
    """A loaded, validated eval definition with its rows resolved."""

    name: str
    data_source_config: CustomDataSourceConfig
    testing_criteria: list[GraderModel]
    data_source: CompletionsDataSource | JsonlDataSource | None
    rows: list[Row]
    metadata: dict[str, Any]
    epochs: int
    source_file: str | None
    raw: dict[str, Any]
    lines: dict[Any, int] = dataclass_field(default_factory=dict, repr=False)
    agent: AgentSpec | None = None

    def definition(self) -> dict[str, Any]:
        """The create-eval body (name, data_source_config, testing_criteria, metadata), and the
        agent block with its python source read in, when there is one."""
        keys = ("data_source_config", "testing_criteria", "metadata")
        out = {"name": self.name}
        out.update({k: self.raw[k] for k in keys if k in self.raw})
        if self.agent is not None:
            out["agent"] = self.agent.model_dump(exclude_none=True)
        return out

    def data_source_dict(self) -> dict[str, Any] | None:
        """The run data source as written in the file (rows stay where they were)."""
        return self.raw.get("data_source")

    def error(self, message: str, loc: tuple[str | int, ...]) -> InputError:
        """An InputError naming this eval's file and the line of ``loc`` (or of its nearest
        ancestor) in it."""
        return Document(data=self.raw, file=self.source_file or "<eval>", lines=self.lines).error(message, loc)

    @property
    def needs_model(self) -> bool:
        """True when some row has no sample and the data source generates samples."""
        return isinstance(self.data_source, CompletionsDataSource) and any(r.sample is None for r in self.rows)


def load_eval(path: str | Path, *, allow_outside_paths: bool = False) -> EvalSpec:
    """Load an eval definition from a YAML or JSON file.

    Returns the EvalSpec with every row validated; raises InputError (file, line, field),
    also for a path the eval names (a rows file, an ``hf/`` or ``scripted/`` model) that
    resolves outside the eval file's folder, symlinks followed, unless ``allow_outside_paths``:
    an eval file is often someone else's.
    """
    doc = read_document(path)
    base_dir = Path(path).resolve().parent
    if not allow_outside_paths and isinstance(doc.data, dict):
        for loc, name in _model_paths(doc.data):  # the provider reads the path relative to the working directory
            _check_inside(name, Path(name.split("/", 1)[1]).expanduser(), base_dir, doc, loc)
    return _build(doc, base_dir=base_dir, allow_outside_paths=allow_outside_paths)


def _model_paths(data: dict[str, Any]) -> Iterator[tuple[tuple, str]]:
    """``(loc, name)`` of every model the eval names that is read from a path (``hf/<dir>``,
    ``scripted/<rules>``): the run's model and each model grader's, in ``multi`` graders too."""
    source = data.get("data_source")
    named = [(("data_source", "model"), source.get("model"))] if isinstance(source, dict) else []
    criteria = data.get("testing_criteria")
    for i, criterion in enumerate(criteria if isinstance(criteria, list) else []):
        named.extend(_grader_models(criterion, ("testing_criteria", i)))
    for loc, name in named:
        if isinstance(name, str) and name.startswith(("hf/", "scripted/")) and name != "scripted/echo":
            yield loc, name


def _grader_models(grader: Any, loc: tuple) -> list[tuple[tuple, Any]]:
    if not isinstance(grader, dict):
        return []
    found = [(loc + ("model",), grader.get("model"))]
    subs = grader.get("graders")
    pairs = subs.items() if isinstance(subs, dict) else enumerate(subs) if isinstance(subs, list) else ()
    for key, sub in pairs:
        found.extend(_grader_models(sub, loc + ("graders", key)))
    return found


def eval_from_dict(data: dict[str, Any], *, base_dir: str | Path = ".", name: str = "<eval>",
                   allow_outside_paths: bool = False) -> EvalSpec:
    """Build an EvalSpec from an in-memory definition (the rules of :func:`load_eval`, with
    ``base_dir`` as the eval's folder for its rows file; the models it names are the caller's)."""
    return _build(Document(data=data, file=name), base_dir=Path(base_dir), allow_outside_paths=allow_outside_paths)


def parse_data_source(data: dict[str, Any], *, file: str = "<store>") -> CompletionsDataSource | JsonlDataSource:
    """Validate a stored run data source (rows are not read); returns the chat form."""
    holder = validate_model(_DataSourceHolder, {"data_source": data}, Document(data=data, file=file))
    source = holder.data_source
    return source.to_completions() if isinstance(source, ResponsesDataSource) else source


def parse_criteria(data: list[Any], *, file: str = "<store>") -> list[GraderModel]:
    """Validate a stored list of testing criteria; returns typed graders."""
    doc = Document(data={"testing_criteria": data}, file=file)
    return [load_grader(c, doc, ("testing_criteria", i)) for i, c in enumerate(data)]


class _DataSourceHolder(_Strict):
    data_source: DataSource = Field(discriminator="type")


def _build(doc: Document, base_dir: Path, allow_outside_paths: bool = False) -> EvalSpec:
    if not isinstance(doc.data, dict):
        raise doc.error("an eval definition must be a mapping with data_source_config and testing_criteria")
    _check_config_type(doc)
    body = validate_model(_EvalBody, doc.data, doc)
    criteria = [load_grader(c, doc, ("testing_criteria", i)) for i, c in enumerate(body.testing_criteria)]
    _check_unique_names(criteria, doc)
    source = body.data_source
    if source is not None and not isinstance(source, JsonlDataSource):
        _check_tools(source.sampling_params.tools or [], doc)
    if isinstance(source, ResponsesDataSource):
        source = source.to_completions()
    rows = _load_rows(source, doc, base_dir, allow_outside_paths) if source is not None else []
    schema = body.data_source_config.effective_item_schema()
    if schema is not None:
        _check_items(schema, rows, doc)
    if isinstance(source, JsonlDataSource):
        _check_jsonl_samples(rows, criteria)
    _check_templates(criteria, source, rows, doc)
    agent = _agent(doc, source, rows, base_dir, allow_outside_paths)
    raw = json.loads(json.dumps(doc.data, default=str))
    name = body.name or Path(doc.file).stem
    return EvalSpec(
        name=name, data_source_config=body.data_source_config, testing_criteria=criteria,
        data_source=source, rows=rows, metadata=body.metadata or {}, epochs=body.epochs,
        source_file=doc.file, raw=raw, lines=doc.lines, agent=agent,
    )


def _agent(doc: Document, source: Any, rows: list[Row], base_dir: Path, allow_outside: bool) -> AgentSpec | None:
    if doc.data.get("agent") is not None and not isinstance(source, CompletionsDataSource):
        raise doc.error("an agent block needs a completions (or responses) data source with input_messages",
                        ("agent",))
    tools = (source.sampling_params.tools or []) if isinstance(source, CompletionsDataSource) else []
    return load_agent(doc, base_dir, tools, rows, allow_outside)


def _check_tools(tools: list[dict[str, Any]], doc: Document) -> None:
    """Refuse OpenAI's built-in Responses tools (web search, file search, MCP, …): no
    OpenAI-compatible model can run them through Chat Completions."""
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind is None:
            raise doc.error("a tool needs type: function (with name and parameters)",
                            ("data_source", "sampling_params", "tools", i))
        if kind != "function":
            raise doc.error(
                f"tool type {kind!r} is one of OpenAI's hosted tools, which gradeloop cannot run; only "
                "function tools work ({type: function, name, parameters}); the model's calls are graded "
                "from sample.output_tools", ("data_source", "sampling_params", "tools", i, "type"))


def _check_unique_names(criteria: list[GraderModel], doc: Document) -> None:
    seen: set[str] = set()
    for i, c in enumerate(criteria):
        if c.name in seen:
            raise doc.error(f"two testing criteria are named '{c.name}'; names must be unique "
                            "(a criterion without a name is named after its type)",
                            ("testing_criteria", i, "name"))
        seen.add(c.name)


def _load_rows(source: CompletionsDataSource | JsonlDataSource, doc: Document, base_dir: Path,
               allow_outside_paths: bool = False) -> list[Row]:
    src = source.source
    loc = ("data_source", "source")
    if isinstance(src, FileIdSource):
        raise doc.error(
            f"'file_id' ({src.id}) names a file in OpenAI's file store; download it and use "
            "{type: file, path: rows.jsonl}", loc + ("type",))
    if isinstance(src, StoredLogsSource):
        raise doc.error(
            f"source type '{src.type}' queries {'completions' if src.type == 'stored_completions' else 'responses'} "
            "stored in OpenAI's logs, which gradeloop cannot read; export them to JSONL (one {\"item\": {...}} per line) and use "
            "{type: file, path: rows.jsonl}", loc + ("type",))
    if isinstance(src, FileContentSource):
        pairs = [(doc.line(loc + ("content", i)), value) for i, value in enumerate(src.content)]
        file = doc.file
    else:
        path = (base_dir / src.path) if not Path(src.path).is_absolute() else Path(src.path)
        if not allow_outside_paths:
            _check_inside(src.path, path, base_dir, doc, loc + ("path",))
        if not path.exists():
            raise doc.error(f"rows file not found: {path}", loc + ("path",))
        file = str(path)
        pairs = list(read_jsonl(path))
    rows = [_row(i, line, value, file, doc, src) for i, (line, value) in enumerate(pairs)]
    if not rows:
        raise InputError("the data source has no rows", file=file)
    return rows


def _check_inside(written: str, path: Path, base_dir: Path, doc: Document, loc: tuple) -> None:
    """Refuse ``path`` (``written`` in the eval) when it resolves, symlinks followed, outside ``base_dir``."""
    folder = base_dir.resolve()
    target = path.resolve()
    if not target.is_relative_to(folder):
        raise doc.error(f"'{written}' resolves to {target}, outside the eval file's folder {folder}; an eval "
                        "file may only read files in its own folder unless you pass --allow-outside-paths "
                        "(allow_outside_paths=True in Python) for a file you trust", loc)


def _row(index: int, line: int | None, value: Any, file: str, doc: Document, src: Any) -> Row:
    def fail(message: str, field: str) -> InputError:
        return InputError(message, file=file, line=line, field=field)

    inline = isinstance(src, FileContentSource)
    field_prefix = f"data_source.source.content[{index}]" if inline else ""
    if not isinstance(value, dict) or "item" not in value:
        keys = list(value)[:5] if isinstance(value, dict) else type(value).__name__
        raise fail(f'each row must be {{"item": {{...}}, "sample": {{...}}?}} (got {keys})', field_prefix or "item")
    extra = set(value) - {"item", "sample"}
    if extra:
        raise fail(f"unknown row keys {sorted(extra)}; a row has 'item' and optionally 'sample'",
                   _join(field_prefix, sorted(extra)[0]))
    item = value["item"]
    if not isinstance(item, dict):
        raise fail("'item' must be an object", _join(field_prefix, "item"))
    sample = value.get("sample")
    if sample is not None:
        sample = _normalize_sample(sample, fail, _join(field_prefix, "sample"))
    return Row(index=index, item=item, sample=sample, file=file, line=line)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _normalize_sample(sample: Any, fail: Any, field: str) -> dict[str, Any]:
    """Accept ``{"output_text": …}`` or ``{"choices": [...]}`` and return the sample dict."""
    if isinstance(sample, str):
        return {"output_text": sample}
    if not isinstance(sample, dict):
        raise fail("'sample' must be an object with output_text (or choices)", field)
    if "output_text" in sample:
        if not isinstance(sample["output_text"], str):
            raise fail("must be a string", f"{field}.output_text")
        return sample
    choices = sample.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        out = dict(sample)
        out["output_text"] = message.get("content") or ""
        if message.get("tool_calls"):
            out.setdefault("output_tools", message["tool_calls"])
        return out
    raise fail("a sample needs 'output_text' (or OpenAI 'choices')", field)


def _check_items(schema: dict[str, Any], rows: list[Row], doc: Document) -> None:
    loc = ("data_source_config", "item_schema")
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = loc + tuple(exc.path)
        raise doc.error(f"item_schema is not a valid JSON Schema: {exc.message}", where) from None
    validator = validator_cls(schema)
    for row in rows:
        error = jsonschema.exceptions.best_match(validator.iter_errors(row.item))
        if error is not None:
            path = format_loc(("item",) + tuple(error.absolute_path))
            raise InputError(f"item does not match item_schema: {error.message}",
                             file=row.file, line=row.line, field=path)


def _check_jsonl_samples(rows: list[Row], criteria: list[GraderModel]) -> None:
    uses_sample = any("sample." in json.dumps(c.model_dump()) for c in criteria)
    if not uses_sample:
        return
    for row in rows:
        if row.sample is None:
            raise InputError(
                "this row has no 'sample', and a jsonl data source does not generate one "
                "(use type 'completions' with input_messages to sample a model)",
                file=row.file, line=row.line, field="sample")


SAMPLE_FIELDS = ("output_text", "output_json", "output_tools", "choices", "output_audio", "trajectory")


def _strings(value: Any, loc: tuple) -> list[tuple[tuple, str]]:
    if isinstance(value, str):
        return [(loc, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, loc + (k,))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, loc + (i,))]
    return []


def _check_templates(criteria: list[GraderModel], source: Any, rows: list[Row], doc: Document) -> None:
    """Fail fast on a template that names a missing item field or an unknown sample field."""
    refs: list[tuple[tuple, str]] = []
    for i, c in enumerate(criteria):
        refs += [(loc, v) for loc, text in _strings(c.model_dump(exclude_none=True), ("testing_criteria", i))
                 for v in variables(text)]
    messages = getattr(source, "input_messages", None)
    if isinstance(messages, TemplateMessages):
        refs += [(loc, v) for loc, text in _strings(messages.template, ("data_source", "input_messages", "template"))
                 for v in variables(text)]
    item_refs = []
    for loc, var in refs:
        head, _, rest = var.strip().partition(".")
        if head == "sample":
            first = rest.split("[")[0].split(".")[0]
            if first not in SAMPLE_FIELDS or "input_messages" in loc:
                allowed = "the sample is not available in input messages" if "input_messages" in loc \
                    else f"the sample has {', '.join(SAMPLE_FIELDS)}"
                raise doc.error(f"'{{{{ {var} }}}}': {allowed}", loc)
        elif head == "item":
            item_refs.append((loc, var))
        else:
            raise doc.error(f"'{{{{ {var} }}}}': unknown namespace '{head}' (use item or sample)", loc)
    if isinstance(messages, ItemReferenceMessages):
        ref = messages.item_reference.strip().strip("{} ")
        if not ref.startswith("item."):
            raise doc.error("item_reference must name a field of the item, e.g. item.messages",
                            ("data_source", "input_messages", "item_reference"))
    for row in rows:
        for loc, var in item_refs:
            try:
                resolve(var, {"item": row.item})
            except TemplateError as exc:
                raise InputError(f"{exc.message} (referenced at {format_loc(loc)} in {doc.file})",
                                 file=row.file, line=row.line, field="item") from None
        if isinstance(messages, ItemReferenceMessages):
            _check_reference(messages.item_reference, row)


def _check_reference(reference: str, row: Row) -> None:
    ref = reference.strip().strip("{} ")
    try:
        value = resolve(ref, {"item": row.item})
    except TemplateError as exc:
        raise InputError(exc.message, file=row.file, line=row.line, field="item") from None
    ok = isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)
    if not ok:
        raise InputError(f"'{ref}' must be a non-empty list of messages with 'role' and 'content'",
                         file=row.file, line=row.line, field=ref)
