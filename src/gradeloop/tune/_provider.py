"""``ft:<job>`` and ``ft:<job>:ckpt-step-<n>``: fine-tuned models by name, in evals and ``serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import register_name_resolver
from ..models._local import HFProvider


class FineTunedProvider(HFProvider):
    """The engine provider of a fine-tuning job's final model or one of its checkpoints."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def model_dir(self) -> Path:
        from ._jobs import model_dir_for

        return model_dir_for(self._name)

    def identity(self) -> dict[str, Any]:
        return {"provider": "ft", "model": self._name, "weights": self._identity_fingerprint()}

    def _identity_fingerprint(self) -> str:
        from ..models._local import directory_fingerprint

        return directory_fingerprint(self.model_dir())


def _build(name: str, base_url: str | None = None, **options: Any) -> FineTunedProvider:
    return FineTunedProvider(name, **options)


register_name_resolver("ft:", _build)
