"""Release the monorepo's distributions together: one tag, one version, four checked artifacts.

    python scripts/release.py bump 1.1.0          # every _version.py to 1.1.0
    python scripts/release.py check --tag v1.1.0  # versions agree with the tag and each other
    python scripts/release.py build --out dist    # wheels + sdists, then twine check and metadata

The release workflow (.github/workflows/release.yml) runs ``check`` and ``build`` on a tag and
publishes the result with PyPI's trusted publishing. The built-in distributions are released in
step (the same version, from one tag) so that a user who installs any of them from one release
gets a core they were tested with; a strategy still declares the core range it supports
(``sage-llm-core>=1.0,<2``), which is what third-party plugins align with (docs/versioning.md).
"""

from __future__ import annotations

import argparse
import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
VERSION_RE = re.compile(r'^__version__ = "([^"]+)"$', re.M)


class ReleaseError(Exception):
    """Something that must be fixed before a release (the message says what)."""


def project(path: Path) -> dict[str, object]:
    data = tomllib.loads((path / "pyproject.toml").read_text("utf-8"))
    proj: dict[str, object] = data["project"]
    proj["_version_file"] = path / data["tool"]["hatch"]["version"]["path"]
    return proj


def versions() -> dict[str, str]:
    """Distribution name -> the version in its ``_version.py``."""
    found = {}
    for path in PACKAGES:
        proj = project(path)
        text = Path(str(proj["_version_file"])).read_text("utf-8")
        match = VERSION_RE.search(text)
        if match is None:
            raise ReleaseError(f'{proj["_version_file"]}: no __version__ = "X.Y.Z" line')
        found[str(proj["name"])] = match.group(1)
    return found


def bump(new: str) -> None:
    Version(new)  # raises InvalidVersion with pip's own message on a bad string
    for path in PACKAGES:
        file = Path(str(project(path)["_version_file"]))
        text = file.read_text("utf-8")
        file.write_text(VERSION_RE.sub(f'__version__ = "{new}"', text), "utf-8")
    check(None)


def check(tag: str | None) -> str:
    """The one version of this release; raises ReleaseError on any disagreement."""
    found = versions()
    distinct = set(found.values())
    if len(distinct) != 1:
        listing = ", ".join(f"{name} {v}" for name, v in sorted(found.items()))
        raise ReleaseError(
            f"the distributions are not in step ({listing}): run "
            "`python scripts/release.py bump X.Y.Z`"
        )
    (version,) = distinct
    if tag is not None and tag.removeprefix("v") != version:
        raise ReleaseError(
            f"tag {tag!r} does not match the distributions' version {version}: tag v{version}, "
            "or bump the versions first"
        )
    # Every requirement on a sibling must accept this release, or pip would pair the new
    # strategy wheels with an older core from PyPI (or refuse to install them together).
    names = set(found)
    for path in PACKAGES:
        proj = project(path)
        extras = proj.get("optional-dependencies") or {}
        assert isinstance(extras, dict)
        reqs = list(proj.get("dependencies") or []) + [r for v in extras.values() for r in v]
        for raw in reqs:
            req = Requirement(str(raw))
            if req.name in names and not req.specifier.contains(version, prereleases=True):
                raise ReleaseError(
                    f"{proj['name']} requires {raw!r}, which excludes this release {version}: "
                    "widen the range in its pyproject.toml"
                )
    return version


def build(out: Path) -> list[Path]:
    """Wheel and sdist of each distribution into ``out``, checked as PyPI would."""
    version = check(None)
    out.mkdir(parents=True, exist_ok=True)
    for path in PACKAGES:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "-o",
                out,
                path,
            ],
            check=True,
            capture_output=True,
        )
    artifacts = sorted(out.glob(f"*-{version}*"))
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *artifacts], check=True)
    for path in PACKAGES:
        check_metadata(project(path), out, version)
    return artifacts


def check_metadata(proj: dict[str, object], out: Path, version: str) -> None:
    """What a PyPI page and an installer read: name, version, license, readme, entry points."""
    stem = str(proj["name"]).replace("-", "_")
    wheels = list(out.glob(f"{stem}-{version}-*.whl"))
    sdists = list(out.glob(f"{stem}-{version}.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise ReleaseError(
            f"{proj['name']}: expected one wheel and one sdist of {version} in {out}"
        )
    with zipfile.ZipFile(wheels[0]) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        ep_text = zf.read(entry_points).decode() if entry_points else ""
    problems = []
    if meta["Name"] != proj["name"] or meta["Version"] != version:
        problems.append(f"metadata says {meta['Name']} {meta['Version']}")
    if not meta["License-Expression"] and not meta["License"]:
        problems.append("no license in the metadata")
    if not meta.get_payload().strip():
        problems.append("no long description (README) in the metadata")
    if not any(n.endswith("/py.typed") for n in names):
        problems.append("no py.typed marker in the wheel")
    declared = (proj.get("entry-points") or {}).get("sage.llm.speculative")  # type: ignore[union-attr]
    if declared and "[sage.llm.speculative]" not in ep_text:
        problems.append("its sage.llm.speculative entry points are missing from the wheel")
    with tarfile.open(sdists[0]) as tf:
        if not any(m.name.endswith("/pyproject.toml") for m in tf.getmembers()):
            problems.append("the sdist has no pyproject.toml")
    if problems:
        raise ReleaseError(f"{proj['name']} {version}: " + "; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bump").add_argument("version")
    sub.add_parser("check").add_argument("--tag", default=None)
    sub.add_parser("build").add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    try:
        if args.command == "bump":
            bump(args.version)
            print(f"every distribution is now at {args.version}")
        elif args.command == "check":
            print(f"release {check(args.tag)}: {', '.join(versions())} in step")
        else:
            for artifact in build(args.out):
                print(artifact)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
