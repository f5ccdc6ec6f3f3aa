"""Write the Spec-Bench questions the vendored subset does not hold, to check settings tuned on
the subset against questions they were not tuned on.

    python benchmarks/specbench_outside.py /path/to/spec_bench/question.jsonl /tmp/outside.jsonl
    sage-llm bench --questions /tmp/outside.jsonl --strategy ngram --strategy suffix --limit 2

Lines are copied unchanged, in their order; a question is left out when its ``question_id`` is
in the vendored ``sage/llm/bench/data/question.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sage.llm.bench.questions import bundled_questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("full", type=Path, help="Spec-Bench's full question.jsonl")
    parser.add_argument("out", type=Path, help="where to write the questions left")
    args = parser.parse_args()
    vendored = {
        json.loads(line)["question_id"]
        for line in bundled_questions().read_text("utf-8").splitlines()
        if line.strip()
    }
    kept = [
        line
        for line in args.full.read_text("utf-8").splitlines()
        if line.strip() and json.loads(line)["question_id"] not in vendored
    ]
    args.out.write_text("".join(f"{line}\n" for line in kept), "utf-8")
    print(f"{len(kept)} questions outside the vendored {len(vendored)}: {args.out}")


if __name__ == "__main__":
    main()
