"""Supervised fine-tuning on an OpenAI SFT file, with TRL's SFTTrainer.

Loss is on assistant tokens only, and only on assistant messages with ``weight`` 1 (the
default): system, user and tool messages and ``weight: 0`` assistant messages are context.
TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers that most chat templates
lack, so :func:`tokenize_conversation` builds the labels itself:

1. render the whole conversation with the model's chat template (with the row's ``tools``);
2. for each trained assistant message ``i``, its span of characters runs from the end of the
   rendered prefix ``messages[:i]`` *with* the generation prompt (so the "assistant" header is
   context) to the end of the rendered ``messages[:i + 1]`` (so the end-of-turn token is a
   target and the model learns to stop);
3. tokenize the whole text once (as inference does) and keep as labels the tokens that start
   inside a span; every other label is -100.

Templates that do not render a prefix of the conversation as a prefix of the whole (some
rewrite earlier turns) fall back to locating the message's content in the text.

The tokenized rows (``input_ids``, ``labels``) go to SFTTrainer, which uses them as they are.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..spec._load import read_jsonl
from ._common import (JobCallback, chat_messages, load_job, lora_config, max_seq_length, prepare_process,
                      row_tools, run_training, training_arguments, valid_subset)
from ._context import JobContext, TrainResult

__all__ = ["train", "tokenize_conversation"]


def train(ctx: JobContext) -> TrainResult:
    """Fine-tune ``ctx.spec.base_model_dir`` on the SFT file; returns the final model (a LoRA
    adapter by default, ``options["lora"] = False`` for full fine-tuning)."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    prepare_process()
    spec = ctx.spec
    rows, valid_rows, hp, tokenizer, model = load_job(ctx, "supervised", "examples")

    def dataset(source: list[dict[str, Any]], path: Any) -> Any:
        out = []
        lines = [n for n, _ in read_jsonl(path)]  # the rows' line numbers, for errors
        for n, row in zip(lines, source):
            try:
                out.append(tokenize_conversation(tokenizer, row))
            except InputError as exc:
                raise exc.located(file=str(path), line=n) from None
        return datasets.Dataset.from_list(out)

    train_set = dataset(rows, spec.training_file)
    valid_set = dataset(valid_rows, spec.validation_file) if valid_rows else None
    config = SFTConfig(**training_arguments(spec, hp, len(rows), has_validation=valid_set is not None),
                       max_length=max_seq_length(spec))
    callback = JobCallback(ctx, spec.base_model_dir)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_set,
                         eval_dataset=valid_subset(valid_set, spec.seed) if valid_set is not None else None,
                         processing_class=tokenizer, peft_config=lora_config(spec), callbacks=[callback])
    return run_training(ctx, trainer, callback, full_valid=valid_set)


def tokenize_conversation(tokenizer: Any, row: dict[str, Any]) -> dict[str, list[int]]:
    """``{"input_ids", "labels"}`` for one SFT row: labels are the token ids of assistant
    messages with weight 1 (header excluded, end-of-turn included) and -100 everywhere else."""
    raw = row["messages"]
    messages = chat_messages(raw, tokenizer.chat_template)
    tools = row_tools(row)

    def render(upto: int, generation_prompt: bool = False) -> str:
        return tokenizer.apply_chat_template(messages[:upto], tools=tools, tokenize=False,
                                             add_generation_prompt=generation_prompt)

    text = render(len(messages))
    spans = [_span(text, render, i, messages[i]["content"], tokenizer.eos_token)
             for i, m in enumerate(raw) if m.get("role") == "assistant" and m.get("weight", 1) == 1]
    ids, starts = _tokens_with_starts(tokenizer, text, spans)
    labels = [t if any(a <= c < b for a, b in spans) else -100 for t, c in zip(ids, starts)]
    return {"input_ids": ids, "labels": labels}


def _span(text: str, render: Any, i: int, content: str, eos: str | None) -> tuple[int, int]:
    """Character span of assistant message ``i`` in ``text`` (see the module docstring)."""
    try:
        before = render(i, generation_prompt=True) if i else ""
    except Exception:  # noqa: BLE001 - a template may refuse an empty or odd prefix
        before = ""
    through = render(i + 1)
    if text.startswith(through) and through.startswith(before):
        return len(before), len(through)
    at = text.find(content) if content else -1  # the template rewrites earlier turns
    if at < 0:
        raise InputError("the model's chat template does not render this assistant message's content",
                         field=f"messages[{i}]")
    end = at + len(content)
    if eos and text.startswith(eos, end):
        end += len(eos)
    return at, end


def _tokens_with_starts(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` and the character each token starts at. A fast tokenizer
    tokenizes the text once (offsets); a slow one tokenizes the pieces between span edges."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [a for a, _ in enc["offset_mapping"]]
    cuts = sorted({0, len(text), *(c for span in spans for c in span)})
    ids: list[int] = []
    starts: list[int] = []
    for a, b in zip(cuts, cuts[1:]):
        piece = tokenizer(text[a:b], add_special_tokens=False)["input_ids"]
        ids += piece
        starts += [a] * len(piece)
    return ids, starts
