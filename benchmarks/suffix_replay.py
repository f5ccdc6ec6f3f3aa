"""Replay suffix (and ngram) proposals over a bench run's plain greedy outputs, without the model.

Every method of ours reproduces plain greedy decoding token for token, so a bench JSON's plain
outputs fix what each step would accept: a proposal is accepted up to its first token that
differs from the output, then one token more (the verify pass's own). Replaying the requests
in the run's order through one proposer per setting (so the cache of earlier outputs fills as
in the run) gives each setting's steps, proposals and accepted tokens exactly (the replay of
the run's own settings equals its recorded counts). Time is a model of this CPU's verify pass,
relative to a one-token step: ``1`` without a proposal, ``1 + alpha + beta * L`` with one of
``L`` tokens (``benchmarks/cpu_layout.py`` measures it; prefill is left out, being the same
for every method). Use it to see what a parameter changes before paying for a bench run, and
check what it finds with one: the model is an approximation, the counts are not.

    python benchmarks/suffix_replay.py bench-results/bench-*.json \
        --setting cache_min_match_length=2 --setting cache_min_match_length=3

For a ``--workload`` run pass ``--workload agentic`` (or the file), so that follow-ups quote
the answers the run quoted.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

Stream = tuple[str, list[int], list[int]]  # category, prompt ids, plain output ids


def streams(run: dict[str, Any], questions: Path | None, workload: str | None) -> list[Stream]:
    """The run's requests in order, with the prompt ids the bench fed the model."""
    from transformers import AutoTokenizer

    from sage.llm.bench.questions import load_questions
    from sage.llm.bench.workload import load_workload
    from sage.llm.prompts import prompt_token_ids

    tokenizer = AutoTokenizer.from_pretrained(run["model_path"])
    chat = bool(run.get("chat", True))
    out: list[Stream] = []
    if workload:
        requests = {r.request_id: r for r in load_workload(workload)}
        answers: dict[str, str] = {}
    else:
        prompts = {q.question_id: q.prompt for q in load_questions(questions)}
    for record in run["records"]:
        if record["method"] != "plain":
            continue
        if workload:
            request = requests[record["question_id"]]
            text = request.render(answers)
            answers[request.request_id] = tokenizer.decode(
                record["token_ids"], skip_special_tokens=True
            )
        else:
            text = prompts[record["question_id"]]
        ids = prompt_token_ids(tokenizer, text, chat=chat, model_name=run["model"])
        if len(ids) != record["prompt_tokens"]:
            raise SystemExit(
                f"{record['question_id']}: {len(ids)} prompt tokens here, {record['prompt_tokens']}"
                " in the run: pass the --questions or --workload the run used."
            )
        out.append((record["category"], ids, record["token_ids"]))
    return out


def replay(proposer: Any, requests: list[Stream], max_tokens: int, alpha: float, beta: float):
    """Per category: steps, proposed and accepted tokens, modelled time and plain's time."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for category, prompt, output in requests:
        row = totals[category]
        proposer.start(prompt)
        context = [*prompt, output[0]]  # prefill's token
        done = 1
        while done < len(output):
            room = max_tokens - done - 1
            draft = list(proposer.propose(context, room).token_ids)[:room] if room > 0 else []
            accepted = 0
            while accepted < len(draft) and done + accepted < len(output):
                if draft[accepted] != output[done + accepted]:
                    break
                accepted += 1
            proposer.on_verified(len(draft), accepted)
            row["time"] += 1 + alpha + beta * len(draft) if draft else 1
            row["steps"] += 1
            row["proposed"] += len(draft)
            row["accepted"] += accepted
            committed = output[done : done + accepted + 1]
            context += committed
            done += len(committed)
        row["plain"] += len(output) - 1
        finish = getattr(proposer, "finish", None)
        if finish is not None:
            finish(output)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a sage-llm bench JSON (it holds plain's outputs)")
    parser.add_argument("--questions", type=Path, help="the --questions file the run used")
    parser.add_argument("--workload", help="the --workload the run used")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="suffix parameters, e.g. 'cache_min_match_length=2,min_token_prob=0.2'",
    )
    parser.add_argument("--alpha", type=float, default=1.0, help="a verify pass's extra cost")
    parser.add_argument("--beta", type=float, default=0.05, help="its cost per proposed token")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from sage.llm import get_strategy

    run = json.loads(args.run.read_text("utf-8"))
    requests = streams(run, args.questions, args.workload)
    specs = ["ngram", "suffix", *(f"suffix:{s}" for s in args.setting)]
    results = {}
    for spec in specs:
        proposer = get_strategy(spec).make_proposer(None)  # type: ignore[arg-type]
        results[spec] = replay(proposer, requests, run["max_tokens"], args.alpha, args.beta)
    categories = list(results["ngram"])
    print(
        f"modelled speed vs ngram (alpha {args.alpha}, beta {args.beta}), {len(requests)} "
        "requests; last columns: all vs ngram, all vs plain, tokens per step"
    )
    print(
        f"{'setting':44s}"
        + "".join(f"{c[:9]:>10s}" for c in categories)
        + "       all  vs plain tok/step"
    )
    for spec, totals in results.items():
        cells = [results["ngram"][c]["time"] / totals[c]["time"] for c in categories]
        time = sum(t["time"] for t in totals.values())
        ngram_time = sum(t["time"] for t in results["ngram"].values())
        plain = sum(t["plain"] for t in totals.values())
        steps = sum(t["steps"] for t in totals.values())
        accepted = sum(t["accepted"] for t in totals.values())
        print(
            f"{spec[:44]:44s}"
            + "".join(f"{x:10.3f}" for x in cells)
            + f"{ngram_time / time:10.3f}{plain / time:10.3f}{(steps + accepted) / steps:9.2f}"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
