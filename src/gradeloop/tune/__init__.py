"""Fine-tuning open models: SFT, DPO and RFT (graders as the reward) on TRL, with OpenAI's job semantics."""

from ._context import JobContext, RecordingContext, StopTraining, TrainingSpec, TrainResult

__all__ = ["JobContext", "RecordingContext", "StopTraining", "TrainResult", "TrainingSpec"]
