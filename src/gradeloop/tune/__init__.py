"""Fine-tuning open models: SFT, DPO and RFT (graders as the reward) on TRL, with OpenAI's job semantics."""

from . import _provider  # noqa: F401  (registers ft:<job> model names)
from ._context import JobContext, RecordingContext, StopTraining, TrainingSpec, TrainResult

__all__ = ["JobContext", "RecordingContext", "StopTraining", "TrainResult", "TrainingSpec"]
