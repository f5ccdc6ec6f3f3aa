"""One client on vLLM: the dynamic proposer against vLLM's own n-gram method, and its load gate.

    python benchmarks/vllm_gate_check.py dyn      # dynamic-lookahead, k fixed at 5, n=5
    python benchmarks/vllm_gate_check.py ngram    # vLLM's n-gram method, k=5, n=5
    python benchmarks/vllm_gate_check.py none     # no speculation

Starts one vLLM engine on the default pack, warms it with 5 requests, then runs 20 greedy chat
requests one after another (the load benchmark's five prompts, 32 tokens each), twice, and
prints tokens per second and the engine's speculative counters after each. For ``dyn`` it also
prints the load gate's decisions and per-band rates (read inside vLLM's engine process, which
needs ``VLLM_ALLOW_INSECURE_SERIALIZATION=1``, set here), then opens the gate (every step
speculates) and runs the 20 requests twice more: the gate's own cost at one client.
Run one variant at a time; compare within one sitting.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sage_llm_strategy_dynamic.load_gate import LoadGate


class OpenGate(LoadGate):
    """Every step speculates."""

    def decide(self, batch: int) -> bool:
        self.steps[True] += 1
        return True


def run(service: Any, texts: list[str], n: int) -> float:
    from vllm import SamplingParams

    start, tokens = time.perf_counter(), 0
    for i in range(n):
        messages = [{"role": "user", "content": texts[i % len(texts)]}]
        params = SamplingParams(max_tokens=32, temperature=0)
        out = service._llm.chat(messages, params, use_tqdm=False)
        tokens += len(out[0].outputs[0].token_ids)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    from serve_load import prompts

    from sage.llm import get_strategy
    from sage.llm.engines.vllm.metrics import read_metrics, snapshot
    from sage.llm.engines.vllm.service import VLLMService, VLLMServiceConfig
    from sage.llm.models import default_pack_name

    which = sys.argv[1] if len(sys.argv) > 1 else "dyn"
    strategies = {
        "dyn": lambda: get_strategy(
            "dynamic-lookahead", min_tokens=5, max_tokens=5, prompt_lookup_max=5
        ),
        "ngram": lambda: get_strategy("ngram"),
        "none": lambda: None,
    }
    if which not in strategies:
        raise SystemExit(f"choose one of {', '.join(strategies)}, got {which!r}")
    texts = prompts(700)
    config = VLLMServiceConfig(
        model_id=default_pack_name(), speculative_strategy=strategies[which]()
    )
    service = VLLMService(config)
    service.setup()
    try:
        run(service, texts, 5)
        for rep in range(2):
            rate = run(service, texts, 20)
            counters = snapshot(read_metrics(service._llm)).counters
            print(f"{which} rep {rep}: {rate:.2f} tok/s, counters so far {counters}", flush=True)
            if which == "dyn":
                gate = service._llm.collective_rpc(
                    lambda w: (
                        dict(w.model_runner.drafter.gate.steps),
                        w.model_runner.drafter.gate.rates(),
                    )
                )
                print(f"  gate (decisions, tok/s speculative/plain by band): {gate}", flush=True)
        if which == "dyn":
            service._llm.collective_rpc(
                lambda w: setattr(w.model_runner.drafter, "gate", OpenGate())
            )
            for rep in range(2):
                print(f"dyn, gate open, rep {rep}: {run(service, texts, 20):.2f} tok/s", flush=True)
    finally:
        service.cleanup()


if __name__ == "__main__":
    main()
