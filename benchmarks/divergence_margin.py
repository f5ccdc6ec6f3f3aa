"""Why a low-precision run differs from plain greedy: the logit margin where it first differs.

Reads the JSON of a ``sage-llm bench --dtype bfloat16`` (or float16) run, and for every output
that differs from plain greedy recomputes, with one forward pass over the prompt plus plain's
tokens up to the first difference, the top logits at that position, in the bench's dtype. A gap
between the two tokens below one unit in the last place of the dtype at that magnitude means the
two were tied for the hardware: which one wins depends on the summation order of the kernel
(one token per pass in plain decoding, ``k + 1`` in a verify pass, the whole prompt here).

    sage-llm bench --dtype bfloat16 --device cpu --limit 2 --max-tokens 32 -s ngram --out r
    python benchmarks/divergence_margin.py r/bench-*.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by sage-llm bench")
    args = parser.parse_args()
    data: dict[str, Any] = json.loads(args.results.read_text("utf-8"))

    import torch

    from sage.llm.bench.questions import load_questions
    from sage.llm.engines.transformers import TransformersEngine

    dtype = data.get("dtype", "float32")
    engine = TransformersEngine.from_pretrained(
        data["model_path"], device="cpu", dtype=dtype, weight_layout=data["weight_layout"]
    )
    questions = {str(q.question_id): q for q in load_questions(None)}
    records = data["records"]
    plain = {str(r["question_id"]): r["token_ids"] for r in records if r["method"] == "plain"}
    eps = torch.finfo(getattr(torch, dtype)).eps
    header = ("method", "question", "at", "plain", "other", "gap", "ulp")
    print(f"{header[0]:<28} " + " ".join(f"{h:>8}" for h in header[1:]))
    for record in records:
        at = record["first_mismatch"]
        qid = str(record["question_id"])
        if at is None or record["method"] == "plain" or at >= len(record["token_ids"]):
            continue
        prompt = engine.encode_prompt(questions[qid].prompt, chat=data.get("chat", True))
        with torch.inference_mode():
            ids = torch.tensor([prompt + plain[qid][:at]])
            logits = engine.model(ids).logits[0, -1].float()
        mine, theirs = plain[qid][at], record["token_ids"][at]
        gap = abs(float(logits[mine] - logits[theirs]))
        ulp = eps * abs(float(logits.max()))
        print(
            f"{record['method']:<28} {qid:>8} {at:>4} {mine:>8} {theirs:>8} {gap:>8.4f} {ulp:>8.4f}"
        )


if __name__ == "__main__":
    main()
