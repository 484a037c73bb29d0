"""scripts/build_spa.py: the pinned MSAL.js bundles copied from node_modules, or a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.build_spa import FILES, PACKAGE, BuildError, build


def make_project(root: Path, pinned: str, installed: str | None) -> None:
    """A package.json pinning ``pinned``, and node_modules holding ``installed`` (or nothing)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"dependencies": {PACKAGE: pinned}}))
    if installed is None:
        return
    package = root / "node_modules" / PACKAGE
    for source in FILES:
        (package / source).parent.mkdir(parents=True, exist_ok=True)
        (package / source).write_text(f"/* {source} */")
    (package / "package.json").write_text(json.dumps({"version": installed}))


def test_the_bundles_and_licence_are_copied_into_vendor(tmp_path: Path) -> None:
    make_project(tmp_path, pinned="5.29.0", installed="5.29.0")

    vendor = build(tmp_path, tmp_path / "site" / "vendor")

    assert sorted(p.name for p in vendor.iterdir()) == sorted(FILES.values())
    for source, name in FILES.items():
        assert (vendor / name).read_text() == f"/* {source} */"


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        (None, "is not installed"),
        ("5.28.0", "node_modules has @azure/msal-browser 5.28.0, package.json pins 5.29.0"),
    ],
)
def test_a_missing_or_stale_node_modules_says_run_npm_ci(
    tmp_path: Path, installed: str | None, message: str
) -> None:
    make_project(tmp_path, pinned="5.29.0", installed=installed)

    with pytest.raises(BuildError, match=message) as raised:
        build(tmp_path, tmp_path / "site" / "vendor")

    assert "npm ci" in str(raised.value)
    assert not (tmp_path / "site" / "vendor").exists()
