"""Direct preference optimization on an OpenAI DPO file, with TRL's DPOTrainer.

Each row becomes TRL's conversational preference example: ``input.messages`` -> ``prompt``,
``preferred_output`` -> ``chosen``, ``non_preferred_output`` -> ``rejected`` and
``input.tools`` -> ``tools`` (JSON text, which TRL decodes and hands to the chat template).
TRL renders the prompt with the generation prompt and trains on the completion tokens.

With LoRA (the default) the reference model is the base with the adapter disabled, so only
one copy of the weights is in memory; full fine-tuning (``options["lora"] = False``) makes TRL
keep a frozen copy. ``beta`` is OpenAI's hyperparameter ("auto" -> 0.1).
"""

from __future__ import annotations

import json
from typing import Any

from ._common import (JobCallback, chat_messages, load_job, lora_config, max_seq_length, prepare_process,
                      run_training, training_arguments, valid_subset)
from ._context import JobContext, TrainResult

__all__ = ["train", "preference_example"]


def train(ctx: JobContext) -> TrainResult:
    """Train ``ctx.spec.base_model_dir`` on the DPO file; returns the final model (a LoRA
    adapter by default, a full checkpoint with ``options["lora"] = False``)."""
    import datasets
    from trl import DPOConfig, DPOTrainer

    prepare_process()
    spec = ctx.spec
    rows, valid_rows, hp, tokenizer, model = load_job(ctx, "dpo", "preference pairs")

    def dataset(source: list[dict[str, Any]]) -> Any:
        examples = [preference_example(row, tokenizer.chat_template) for row in source]
        if not any("tools" in e for e in examples):
            return datasets.Dataset.from_list(examples)
        return datasets.Dataset.from_list([{"tools": None, **e} for e in examples])

    train_set = dataset(rows)
    valid_set = dataset(valid_rows) if valid_rows else None
    config = DPOConfig(**training_arguments(spec, hp, len(rows), has_validation=valid_set is not None),
                       max_length=max_seq_length(spec), beta=hp.beta)
    callback = JobCallback(ctx, spec.base_model_dir)
    trainer = DPOTrainer(model=model, args=config, train_dataset=train_set,
                         eval_dataset=valid_subset(valid_set, spec.seed) if valid_set is not None else None,
                         processing_class=tokenizer, peft_config=lora_config(spec), callbacks=[callback])
    return run_training(ctx, trainer, callback, full_valid=valid_set)


def preference_example(row: dict[str, Any], chat_template: str | None) -> dict[str, Any]:
    """TRL's conversational ``{prompt, chosen, rejected[, tools]}`` for one OpenAI DPO row."""
    example = {"prompt": chat_messages(row["input"]["messages"], chat_template),
               "chosen": chat_messages(row["preferred_output"], chat_template),
               "rejected": chat_messages(row["non_preferred_output"], chat_template)}
    if row["input"].get("tools"):
        example["tools"] = json.dumps(row["input"]["tools"])  # one Arrow type for every row's schemas
    return example
