"""gradeloop: turn real usage into evals, grade any model with OpenAI-compatible graders,
compare models honestly, and fine-tune open models until they pass.

The public surface is what ``__all__`` lists; everything else may change.
"""

from . import graders, tune  # noqa: F401  (tune registers ft:<job> model names)
from .errors import GradeloopError, InputError, NotFoundError, ProviderError, TemplateError
from .models import GenerateRequest, GenerateResult, Provider, get_provider, register_provider
from .report import breakdown, output_item_objects, run_list, run_object, run_summary
from .runner import RetryPolicy, RunOptions, resume_run, resume_run_async, run_eval, run_eval_async
from .spec import EvalSpec, eval_from_dict, grader_hash, load_eval
from .store import Store

__version__ = "0.1.0"

Eval = EvalSpec

__all__ = [
    "Eval",
    "EvalSpec",
    "GenerateRequest",
    "GenerateResult",
    "GradeloopError",
    "InputError",
    "NotFoundError",
    "Provider",
    "ProviderError",
    "RetryPolicy",
    "RunOptions",
    "Store",
    "TemplateError",
    "__version__",
    "breakdown",
    "eval_from_dict",
    "get_provider",
    "grader_hash",
    "graders",
    "load_eval",
    "output_item_objects",
    "register_provider",
    "resume_run",
    "resume_run_async",
    "run_eval",
    "run_eval_async",
    "run_list",
    "run_object",
    "run_summary",
]
