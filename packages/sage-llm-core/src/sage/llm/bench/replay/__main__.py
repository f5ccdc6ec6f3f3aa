"""``python -m sage.llm.bench.replay``: the older name of ``sage-llm replay``."""

from sage.llm.bench.replay import main

raise SystemExit(main())
