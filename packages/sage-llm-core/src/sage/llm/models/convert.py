"""Convert a GGUF file once into a transformers directory (safetensors + tokenizer).

transformers de-quantizes GGUF weights on every load (15-75 s on a small CPU). Saving the
de-quantized model as safetensors makes later loads take well under a second. transformers
refuses to save a GGUF-loaded model while it still carries the GGUF "quantizer", so both the
quantizer and ``config.quantization_config`` are dropped first: the saved weights are plain
floats, exactly what the GGUF load produced.
"""

from __future__ import annotations

from pathlib import Path

from sage.llm.models.errors import ModelConversionError

EXTRA_HINT = "pip install 'sage-llm-core[transformers]' (torch, transformers, gguf, accelerate)"


def require_conversion_stack() -> None:
    """Raise a clear error now if converting a GGUF file would fail on a missing library."""
    missing = []
    for module in ("torch", "transformers", "gguf", "accelerate"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ModelConversionError(
            f"converting a GGUF model needs {', '.join(missing)}, which is not installed: "
            f"{EXTRA_HINT}."
        )


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Load ``gguf_path`` with transformers and save it as a ``from_pretrained`` directory."""
    require_conversion_stack()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    except Exception as exc:
        raise ModelConversionError(
            f"transformers could not load {gguf_path} as a GGUF causal LM: {exc}"
        ) from exc
    setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module by transformers
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
