"""The simulated user (τ-bench style): a model that plays the user from the item's instructions.

It sees the conversation from the user's side (the agent's texts as ``user`` messages, its own
as ``assistant``) and ends the episode by writing ``###STOP###`` (the task is done) or
``###GIVE_UP###`` (it gives up).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..models import GenerateResult, message_text

__all__ = ["SimulatedUser", "DONE", "GIVE_UP"]

DONE, GIVE_UP = "###STOP###", "###GIVE_UP###"
PREAMBLE = (
    "You are a user talking to an assistant (an agent that may use tools). Play the user described "
    "below: write only the user's next message, in the first person, one short message at a time. "
    "Give a detail only when the assistant asks for it or when it is needed to go on; never invent "
    f"details that the instructions do not give. When your task is done, reply with {DONE} alone. "
    f"If the assistant cannot help and you want to stop, reply with {GIVE_UP} alone.\n\n"
    "Instructions:\n"
)


class SimulatedUser:
    """Writes the user's turns with ``call(messages, turn)`` (a model call) from ``instructions``."""

    def __init__(self, instructions: str, max_turns: int,
                 call: Callable[[list[dict[str, Any]], int], Awaitable[GenerateResult]]) -> None:
        self.instructions, self.max_turns, self._call = instructions, max_turns, call
        self.turns = 0

    @property
    def exhausted(self) -> bool:
        """True once the user has written ``max_turns`` messages."""
        return self.turns >= self.max_turns

    async def reply(self, conversation: list[dict[str, Any]], question: str | None = None) -> tuple[str, str | None]:
        """The user's next message after ``conversation`` (or its answer to the agent's
        ``question``, asked with ``ask_user``), and ``"user_done"``, ``"user_gave_up"`` or None."""
        messages = [{"role": "system", "content": PREAMBLE + self.instructions}] + _flipped(conversation)
        if question is not None:
            messages.append({"role": "user", "content": question})
        self.turns += 1
        text = message_text((await self._call(messages, self.turns)).message).strip()
        if DONE in text:
            return text, "user_done"
        if GIVE_UP in text:
            return text, "user_gave_up"
        return text, None


def _flipped(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the user sees it: the agent's texts as ``user`` messages, the user's as
    ``assistant`` ones; system prompts, tool calls and tool results left out."""
    out = []
    for message in conversation:
        text = message_text(message)
        if message.get("role") == "user" and text:
            out.append({"role": "assistant", "content": text})
        elif message.get("role") == "assistant" and text:
            out.append({"role": "user", "content": text})
    return out
