"""``sage-llm bench`` on a tiny random model through the real engine and transformers' peers.

Skipped unless torch, transformers, the reference engine and the ngram strategy are installed
(they are in the `bench` nox session and a full development install).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sage.llm.cli.main import cli


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    pytest.importorskip("sage.llm.engines.transformers.engine", reason="no reference engine")
    pytest.importorskip("sage_llm_strategy_ngram", reason="sage-llm-strategy-ngram missing")
    words = ["<eos>", "<unk>", *(f"w{i}" for i in range(62))]
    tok = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>")
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", unk_token="<unk>", pad_token="<eos>"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=0, pad_token_id=0, bos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    path = tmp_path / "tiny"
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_bench_on_a_tiny_model_matches_plain_greedy(tiny_model: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"

    def prompt(i: int) -> str:
        return " ".join(f"w{(i * j) % 60 + 2}" for j in range(30))

    rows = [
        {"question_id": i, "category": cat, "turns": [prompt(i)]}
        for i, cat in ((1, "qa"), (2, "rag"), (3, "rag"))
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "results"
    args = [
        "bench", "--model", str(tiny_model), "--questions", str(questions), "--no-chat",
        "--limit", "2", "--max-tokens", "12", "--out", str(out),
        "--strategy", "ngram:num_speculative_tokens=3,n=2", "--weight-layout", "row",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(next(out.glob("bench-*.json")).read_text())
    assert data["methods"] == [
        "plain", "hf-plain", "ngram:num_speculative_tokens=3,n=2", "hf-prompt-lookup:k=3,n=2",
    ]  # fmt: skip
    assert len(data["records"]) == 3 * 4
    assert data["weight_layout"] == "row"
    assert all(r["matches_plain"] for r in data["records"])
    ngram_all = next(
        r for r in data["summary"] if r["category"] == "all" and r["method"].startswith("ngram")
    )
    assert ngram_all["peer"] == "hf-prompt-lookup:k=3,n=2"
    assert ngram_all["acceptance_rate"] is not None


def test_assisted_peer_drafts_the_same_k_as_ours(tiny_model: Path) -> None:
    """transformers reads the assisted-generation knobs from the assistant's own config."""
    pytest.importorskip("sage_llm_strategy_draft", reason="sage-llm-strategy-draft missing")
    from sage.llm.bench.methods import Runner, peer_of, plan
    from sage.llm.engines.transformers import TransformersEngine

    spec = f"draft:draft_model_id={tiny_model},num_speculative_tokens=3"
    methods = plan([spec])
    ours = next(m for m in methods if m.name == spec)
    peer = peer_of(ours, methods)
    assert peer is not None
    assert peer.name == "hf-assisted:k=3"
    runner = Runner(TransformersEngine.from_pretrained(str(tiny_model)))
    prompt = [2, 3, 4, 5, 2, 3, 4]
    plain = runner.run(methods[0], prompt, 10).token_ids
    assert runner.run(peer, prompt, 10).token_ids == plain
    assert runner.run(ours, prompt, 10).token_ids == plain
    assistant = runner._draft(str(tiny_model)).generation_config
    assert assistant.num_assistant_tokens == 3
    assert assistant.num_assistant_tokens_schedule == "constant"
    assert assistant.assistant_confidence_threshold == 0.0


def test_dynamic_lookahead_is_compared_with_transformers_defaults(tiny_model: Path) -> None:
    """A user who does not pick k in transformers gets its default schedule: that is the peer
    of dynamic-lookahead with a draft, even right after a constant-k peer ran on the same
    draft model (the knobs live on the draft's config and would otherwise carry over)."""
    pytest.importorskip("sage_llm_strategy_draft", reason="sage-llm-strategy-draft missing")
    pytest.importorskip("sage_llm_strategy_dynamic", reason="sage-llm-strategy-dynamic missing")
    from sage.llm.bench.methods import Runner, assistant_defaults, peer_of, plan
    from sage.llm.engines.transformers import TransformersEngine

    constant = f"draft:draft_model_id={tiny_model},num_speculative_tokens=3"
    dynamic = f"dynamic-lookahead:draft_model_id={tiny_model}"
    methods = plan([constant, dynamic, "dynamic-lookahead:max_tokens=6"])
    by_name = {m.name: m for m in methods}
    peer = peer_of(by_name[dynamic], methods)
    assert peer is not None
    assert peer.name == "hf-assisted:default"
    lookup = peer_of(by_name["dynamic-lookahead:max_tokens=6"], methods)
    assert lookup is not None
    assert lookup.name == "hf-prompt-lookup:k=6,n=4"
    runner = Runner(TransformersEngine.from_pretrained(str(tiny_model)))
    prompt = [2, 3, 4, 5, 2, 3, 4]
    plain = runner.run(methods[0], prompt, 10).token_ids
    assert runner.run(by_name["hf-assisted:k=3"], prompt, 10).token_ids == plain
    assert runner.run(peer, prompt, 10).token_ids == plain
    assistant = runner._draft(str(tiny_model)).generation_config
    defaults = assistant_defaults()
    assert defaults["assistant_confidence_threshold"] > 0  # transformers stops early by default
    assert assistant.num_assistant_tokens_schedule == defaults["num_assistant_tokens_schedule"]
    assert assistant.assistant_confidence_threshold == defaults["assistant_confidence_threshold"]
    assert runner.run(by_name[dynamic], prompt, 10).token_ids == plain


def test_workload_runs_in_order_so_a_cache_across_requests_counts(
    tiny_model: Path, tmp_path: Path
) -> None:
    """--workload: requests in order through one engine per method; the second time a request
    comes, suffix decoding proposes the first answer (more accepted tokens); a follow-up gets
    the earlier answer in its prompt; every output still equals plain greedy."""
    pytest.importorskip("sage_llm_strategy_suffix", reason="sage-llm-strategy-suffix missing")
    first = " ".join(f"w{(7 * j) % 60 + 2}" for j in range(20))
    rows = [
        {"id": "a", "category": "edit", "prompt": first},
        {"id": "b", "category": "edit", "prompt": "w3 w4 w5 w6"},
        {"id": "a-again", "category": "edit", "prompt": first},
        {"id": "quote", "category": "chat", "prompt": "w9 {answer} w9", "quotes": "b"},
    ]
    workload = tmp_path / "w.jsonl"
    workload.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "results"
    suffix = "suffix:num_speculative_tokens=6"
    args = [
        "bench", "--model", str(tiny_model), "--workload", str(workload), "--no-chat",
        "--max-tokens", "24", "--out", str(out), "--no-peers",
        "--strategy", suffix, "--strategy", "ngram:num_speculative_tokens=6,n=2",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(next(out.glob("bench-*.json")).read_text())
    assert data["workload"] == str(workload)
    records = data["records"]
    assert [r["question_id"] for r in records if r["method"] == "plain"] == [
        "a", "b", "a-again", "quote",
    ]  # fmt: skip
    assert all(r["matches_plain"] for r in records)
    by_id = {r["question_id"]: r for r in records if r["method"] == suffix}
    accepted = {k: r["metrics"]["num_accepted_tokens"] for k, r in by_id.items()}
    assert accepted["a-again"] > accepted["a"]
    plain_b = next(r for r in records if r["method"] == "plain" and r["question_id"] == "b")
    assert by_id["quote"]["prompt_tokens"] == 2 + len(plain_b["token_ids"])
    assert {r["category"] for r in data["summary"]} == {"edit", "chat", "all"}


def test_the_bundled_agentic_workload_loads() -> None:
    from sage.llm.bench.workload import load_workload

    requests = load_workload("agentic")
    ids = [r.request_id for r in requests]
    assert len(set(ids)) == len(ids)
    assert {r.category for r in requests} == {"code-edit", "template", "multi-turn"}
    for request in requests:
        if request.quotes is not None:
            assert ids.index(request.quotes) < ids.index(request.request_id)
            assert request.render({request.quotes: "ANSWER"}).count("ANSWER") == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "category": "c"}', "'prompt'"),
        ('{"id": "x", "category": "c", "prompt": "{answer}", "quotes": "y"}', "earlier"),
    ],
)
def test_a_bad_workload_line_says_what_is_wrong(tmp_path: Path, line: str, message: str) -> None:
    from sage.llm.bench.questions import QuestionsError
    from sage.llm.bench.workload import load_workload

    path = tmp_path / "w.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(QuestionsError, match=message):
        load_workload(path)
