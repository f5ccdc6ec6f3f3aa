"""Why the reference engine stores Linear weights column-major on the CPU.

A speculative step verifies ``1 + k`` tokens in one forward pass; that only pays off when the
pass costs about as much as a one-token pass. With PyTorch's default weight layout (row-major
``[out, in]``), ``F.linear`` on the CPU runs MKL's ``A @ B^T`` GEMM, whose cost for a handful of
rows goes up in steps (on the CPUs measured, a 4-token pass cost about twice a 1-token pass).
Holding the same numbers column-major (the transpose made contiguous, viewed back as
``[out, in]``) turns that into a plain ``A @ B`` GEMM whose cost grows smoothly with the rows,
so a typical verify pass costs much less than twice a plain step (2-3 token passes get somewhat
slower; proposals that short are rare). The measured figures and the command that produces
them (``python benchmarks/cpu_layout.py``) are in docs/notes/cpu-weight-layout.md.

The values are the same; only the summation order inside a matmul can change, as it already does
between batch shapes. Tied weights (the embedding and the output projection share one tensor)
are changed once, in place, so no memory is added. CUDA and non-fp32 weights are left alone:
cuBLAS and the bf16 kernels have no such step, and it was not measured there.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

WeightLayout = Literal["auto", "column", "row"]
LAYOUTS: tuple[str, ...] = get_args(WeightLayout)


def wants_column_major(model: Any, layout: WeightLayout = "auto") -> bool:
    """Whether :func:`use_column_major_weights` should run for ``model`` under ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"weight layout must be one of {', '.join(LAYOUTS)}, got {layout!r}.")
    if layout != "auto":
        return layout == "column"
    import torch

    first = next(model.parameters(), None)
    return first is not None and first.device.type == "cpu" and first.dtype == torch.float32


def use_column_major_weights(model: Any) -> int:
    """Store every ``nn.Linear`` weight of ``model`` that lives on the CPU in fp32 column-major.

    In place (the Parameter objects stay the same, so tied weights stay tied); returns how many
    tensors were changed. Running it twice changes nothing the second time.
    """
    import torch

    changed = 0
    seen: set[int] = set()
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        weight = module.weight
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        if weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.dim() != 2:
            continue
        if is_column_major(weight):
            continue
        with torch.no_grad():
            weight.data = weight.data.t().contiguous().t()
        changed += 1
    return changed


def is_column_major(tensor: Any) -> bool:
    rows, _ = tensor.shape
    return bool(tensor.stride(0) == 1 and tensor.stride(1) == rows)
