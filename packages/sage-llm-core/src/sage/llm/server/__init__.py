"""The OpenAI-compatible HTTP server over a :class:`~sage.llm.control_plane.ControlPlaneManager`.

``create_app(manager)`` builds the ASGI app (Starlette); ``sage-llm serve`` runs it on
uvicorn. Needs ``pip install 'sage-llm-core[serve]'``; nothing here is imported by
``import sage.llm``, and importing this package itself loads no server library yet.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "sage.llm.server.app",
    "ServerThread": "sage.llm.server.run",
    "run_server": "sage.llm.server.run",
}

__all__ = ["ServerThread", "create_app", "run_server"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
