"""``python -m sage.llm`` is the ``sage-llm`` command."""

from sage.llm.cli.main import main

main()
