"""Pydantic models of the OpenAI objects gradeloop reads, and loading with located errors."""

from ._eval import (
    CompletionsDataSource,
    CustomDataSourceConfig,
    EvalSpec,
    ItemReferenceMessages,
    JsonlDataSource,
    Row,
    SamplingParams,
    TemplateMessages,
    eval_from_dict,
    load_eval,
    parse_criteria,
    parse_data_source,
)
from ._graders import (
    GraderModel,
    StringCheckGrader,
    grader_hash,
    grader_model_for,
    grader_types,
    load_grader,
    register_grader_model,
)
from ._load import Document, read_document, read_jsonl

__all__ = [
    "CompletionsDataSource",
    "CustomDataSourceConfig",
    "Document",
    "EvalSpec",
    "GraderModel",
    "ItemReferenceMessages",
    "JsonlDataSource",
    "Row",
    "SamplingParams",
    "StringCheckGrader",
    "TemplateMessages",
    "eval_from_dict",
    "grader_hash",
    "grader_model_for",
    "grader_types",
    "load_eval",
    "load_grader",
    "parse_criteria",
    "parse_data_source",
    "read_document",
    "read_jsonl",
    "register_grader_model",
]
