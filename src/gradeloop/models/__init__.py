"""Model providers behind one async interface, named ``provider/model``.

Built in: ``openai/<model>`` (and any OpenAI-compatible server), ``local/smollm2``,
``hf/<directory>`` and ``scripted/<rules file>``.
"""

from ._openai import public_url
from ._base import (
    GenerateRequest,
    GenerateResult,
    Provider,
    Usage,
    check_message,
    get_provider,
    is_empty_message,
    message_text,
    provider_names,
    register_name_resolver,
    register_provider,
    request_fingerprint,
    resolves_by_prefix,
    split_model_name,
)

__all__ = [
    "GenerateRequest",
    "GenerateResult",
    "Provider",
    "Usage",
    "check_message",
    "get_provider",
    "is_empty_message",
    "message_text",
    "provider_names",
    "public_url",
    "register_name_resolver",
    "register_provider",
    "request_fingerprint",
    "resolves_by_prefix",
    "split_model_name",
]
