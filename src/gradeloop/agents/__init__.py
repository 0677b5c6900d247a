"""Agent episodes: tools answered by python functions in the sandbox (with a per-episode state),
canned results or MCP servers; seeded tool faults; a simulated user; and the episode loop the
runner calls (:func:`run_episode`). See docs/agents.md."""

from ._episode import ASK_USER, Episode, EpisodeFailed, EpisodeResult, ModelCall, run_episode
from ._faults import FaultPlan, fault_content
from ._tools import ToolBox, ToolOutcome, tool_content
from ._user import DONE, GIVE_UP, SimulatedUser

__all__ = [
    "ASK_USER",
    "DONE",
    "GIVE_UP",
    "Episode",
    "EpisodeFailed",
    "EpisodeResult",
    "FaultPlan",
    "ModelCall",
    "SimulatedUser",
    "ToolBox",
    "ToolOutcome",
    "fault_content",
    "run_episode",
    "tool_content",
]
