"""EAGLE, EAGLE-3 and MTP on a CUDA GPU with vLLM: lossless output, drafts made and accepted.

A prepared check for a session that has a GPU (no network needed): it builds the tiny random
target and heads of the package's tests (``packages/sage-llm-strategy-eagle/tests``), runs
plain greedy decoding and each strategy through ``VLLMService``, and prints one JSON line per
run. It checks correctness on the GPU code path (CUDA kernels, CUDA graphs unless
``--eager``); speed with random heads says nothing about real ones and is printed only as wall
time::

    python benchmarks/eagle_gpu_check.py            # needs vllm (GPU build) and the packages
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "packages" / "sage-llm-strategy-eagle" / "tests"))

from heads_testutils import (  # noqa: E402
    build_eagle3_head,
    build_eagle_head,
    build_mtp_target,
    build_target,
)

PROMPT = [1, 5, 6, 7, 8, 9, 10, 11]


def run(target: Path, spec: str | None, eager: bool, max_tokens: int) -> dict[str, object]:
    from sage.llm.engines.vllm import VLLMService, VLLMServiceConfig

    engine_args = {"max_model_len": 256, "dtype": "float32", "enforce_eager": eager}
    config = VLLMServiceConfig(
        model_id=str(target), speculative_strategy=spec, engine_args=engine_args
    )
    with VLLMService(config) as service:
        result = service.generate([PROMPT], max_tokens=max_tokens, temperature=0.0, ignore_eos=True)
    m = result.metrics
    return {
        "tokens": list(result.token_ids),
        "draft_tokens": m.num_draft_tokens,
        "accepted_tokens": m.num_accepted_tokens,
        "wall_s": round(m.wall_time_s, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eager", action="store_true", help="no CUDA graphs")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="specheads") as tmp:
        root = Path(tmp)
        target, mimo = build_target(root / "target"), build_mtp_target(root / "mimo")
        plain = run(target, None, args.eager, args.max_tokens)
        plain_mimo = run(mimo, None, args.eager, args.max_tokens)
        tokens = plain["tokens"]
        assert isinstance(tokens, list)
        repeated = next((a for a, b in itertools.pairwise(tokens) if a == b), None)
        cases = {
            "eagle": (target, f"eagle:model={build_eagle_head(root / 'head1')}", plain),
            "eagle3": (target, f"eagle3:model={build_eagle3_head(root / 'head3')}", plain),
            "mtp": (mimo, "mtp", plain_mimo),
        }
        if repeated is not None:
            head = build_eagle3_head(root / "always", always_propose=repeated)
            cases["eagle3-known"] = (target, f"eagle3:model={head}", plain)
        for name, (model, spec, baseline) in cases.items():
            row = run(model, spec, args.eager, args.max_tokens)
            row.update(
                strategy=name,
                equal_to_plain=row["tokens"] == baseline["tokens"],
                plain_wall_s=baseline["wall_s"],
            )
            ok = ok and bool(row["equal_to_plain"]) and row["draft_tokens"] > 0  # type: ignore[operator]
            if name == "eagle3-known":
                ok = ok and row["accepted_tokens"] > 0  # type: ignore[operator]
            row.pop("tokens")
            print(json.dumps(row), flush=True)
    print(json.dumps({"ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
