"""The release path: versions in step with the tag, artifacts that pass PyPI's checks."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", ROOT / "scripts" / "release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def release() -> ModuleType:
    return load_release()


@pytest.fixture
def copy(release: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The packages' pyproject.toml and version files, copied, for the script to edit."""
    packages = []
    for path in release.PACKAGES:
        dest = tmp_path / path.name
        version_file = release.project(path)["_version_file"]
        target = dest / Path(version_file).relative_to(path)
        target.parent.mkdir(parents=True)
        shutil.copy(version_file, target)
        shutil.copy(path / "pyproject.toml", dest / "pyproject.toml")
        packages.append(dest)
    monkeypatch.setattr(release, "PACKAGES", packages)
    return tmp_path


def test_the_tree_is_releasable_as_is(release: ModuleType) -> None:
    version = release.check(None)
    assert set(release.versions().values()) == {version}
    assert release.check(f"v{version}") == version


def test_a_tag_that_is_not_the_version_is_refused(release: ModuleType) -> None:
    version = release.check(None)
    with pytest.raises(release.ReleaseError, match=rf"does not match .* {version}"):
        release.check("v0.0.1")


def test_bump_moves_every_distribution(release: ModuleType, copy: Path) -> None:
    release.bump("1.7.0")
    assert set(release.versions().values()) == {"1.7.0"}
    assert release.check("v1.7.0") == "1.7.0"


def test_distributions_out_of_step_are_refused(release: ModuleType, copy: Path) -> None:
    first = release.PACKAGES[0]
    file = Path(release.project(first)["_version_file"])
    file.write_text('__version__ = "9.9.9"\n')
    with pytest.raises(release.ReleaseError, match="not in step"):
        release.check(None)


def test_a_sibling_range_that_excludes_the_release_is_refused(
    release: ModuleType, copy: Path
) -> None:
    # The strategies declare sage-llm-core>=1.0,<2: a 2.0 release must widen them first.
    with pytest.raises(release.ReleaseError, match=r"excludes this release 2\.0\.0"):
        release.bump("2.0.0")


@pytest.mark.skipif(importlib.util.find_spec("twine") is None, reason="twine not installed")
def test_build_makes_checked_wheels_and_sdists(release: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("build")
    artifacts = release.build(tmp_path / "dist")
    version = release.check(None)
    assert len([a for a in artifacts if a.suffix == ".whl"]) == len(release.PACKAGES)
    assert len([a for a in artifacts if a.name.endswith(".tar.gz")]) == len(release.PACKAGES)
    assert all(version in a.name for a in artifacts)


def test_the_workflow_runs_the_checks_and_publishes_with_trusted_publishing() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert 'tags: ["v*"]' in text
    assert 'scripts/release.py check --tag "${GITHUB_REF_NAME}"' in text
    assert "scripts/release.py build --out dist" in text
    assert "id-token: write" in text
    assert "pypa/gh-action-pypi-publish" in text
    assert "password" not in text  # no API token: trusted publishing
