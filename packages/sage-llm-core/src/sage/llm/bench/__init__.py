"""``sage-llm bench``: speculative strategies vs plain decoding vs transformers, per category.

Split by job: :mod:`questions` loads and selects Spec-Bench prompts, :mod:`methods` says how to
run one method (the engine with a strategy, or transformers' own ``generate``), :mod:`runner`
times every method on every prompt and checks outputs against plain greedy, :mod:`summary`
turns records into per-category numbers, :mod:`report` prints and saves them.
"""
