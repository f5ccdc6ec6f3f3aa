"""``sage-llm generate --engine vllm``: options it cannot honour are refused in one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from vllm_testutils import needs_builtins, needs_vllm

from sage.llm.cli.main import cli
from sage.llm.engines.vllm.service import VLLMServiceConfig
from sage.llm.errors import InvalidParameterError


@needs_vllm
@pytest.mark.parametrize(
    ("device", "message"),
    [("cuda", "the installed vLLM runs on cpu"), ("cpu:1", "takes no device index")],
)
def test_a_device_vllm_cannot_use_is_refused(device: str, message: str) -> None:
    from sage.llm.engines.vllm.generate import check_device

    with pytest.raises(InvalidParameterError, match=message):
        check_device(device)
    check_device("cpu")  # the device this vLLM runs on is fine


def test_weight_layout_is_refused_before_vllm_starts() -> None:
    args = ["generate", "hi", "--engine", "vllm", "--strategy", "none", "--weight-layout", "row"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--weight-layout applies to the transformers engine only" in result.output


@needs_builtins
def test_config_resolves_a_strategy_string_once() -> None:
    from sage_llm_strategy_ngram import NgramStrategy

    config = VLLMServiceConfig(model_id="m", speculative_strategy="ngram:n=3")
    assert isinstance(config.speculative_strategy, NgramStrategy)
    assert config.speculative_strategy.n == 3
    assert VLLMServiceConfig(model_id="m", speculative_strategy="none").speculative_strategy is None


class _ChatTokenizer:
    chat_template = "tmpl"

    def apply_chat_template(self, messages: list[dict[str, str]], **_: object) -> str:
        return f"<u>{messages[0]['content']}<a>"

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": ([1] if add_special_tokens else []) + [ord(c) for c in text]}


class _FakeLLM:
    def get_tokenizer(self) -> _ChatTokenizer:
        return _ChatTokenizer()


def test_service_prompts_are_prepared_as_the_reference_engine_prepares_them() -> None:
    from sage.llm.engines.vllm.service import VLLMService
    from sage.llm.prompts import prompt_token_ids

    service = VLLMService(VLLMServiceConfig(model_id="m"))
    service._llm = _FakeLLM()  # no engine needed to check what would be sent
    chat = prompt_token_ids(_ChatTokenizer(), "hi")
    assert service.prompt_token_ids("hi") == [chat]
    assert service.prompt_token_ids(["hi", "hi"], chat=False) == [[1, 104, 105]] * 2
    assert service.prompt_token_ids([5, 6]) == [[5, 6]]  # one prompt as token ids
    assert service.prompt_token_ids([[5, 6], [7]]) == [[5, 6], [7]]
    with pytest.raises(InvalidParameterError, match="prompts must be"):
        service.prompt_token_ids([])
