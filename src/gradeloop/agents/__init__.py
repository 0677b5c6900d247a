"""Agent episodes (issue 15). This branch holds only the metrics over stored episodes
(:mod:`gradeloop.agents._metrics`); the episode loop and tools come with their own branch."""
