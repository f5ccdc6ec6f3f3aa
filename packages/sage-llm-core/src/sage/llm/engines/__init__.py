"""Engines that run speculative decoding: ``vllm`` (production) and ``transformers`` (reference)."""
