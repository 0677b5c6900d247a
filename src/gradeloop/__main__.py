"""``python -m gradeloop``: the CLI."""

from .cli import main

main()
