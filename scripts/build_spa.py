"""Copy MSAL.js from node_modules into the sample SPA, so that it runs with no CDN.

    npm ci && .venv/bin/python -m scripts.build_spa

@azure/msal-browser ships browser bundles (a global `msal`, and `msalRedirectBridge` for the
redirect page), so nothing needs bundling: the minified files are copied, with the licence,
into samples/spa/vendor/ (not committed). The installed version must be the one package.json
pins, so a stale node_modules fails here rather than in the browser.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@azure/msal-browser"
VENDOR_DIR = ROOT / "samples" / "spa" / "vendor"
# file in the package -> name in vendor/
FILES = {
    "lib/msal-browser.min.js": "msal-browser.min.js",
    "lib/redirect-bridge/msal-redirect-bridge.min.js": "msal-redirect-bridge.min.js",
    "LICENSE": "msal-browser.LICENSE.txt",
}


class BuildError(RuntimeError):
    """MSAL.js is not installed, or not the pinned version."""


def pinned_version(root: Path = ROOT) -> str:
    dependencies = json.loads((root / "package.json").read_text(encoding="utf-8"))["dependencies"]
    return str(dependencies[PACKAGE])


def installed_version(package_dir: Path) -> str:
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        raise BuildError(f"{PACKAGE} is not installed in {package_dir.parent.parent}; run `npm ci`")
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])


def build(root: Path = ROOT, vendor_dir: Path = VENDOR_DIR) -> Path:
    """Copy the pinned MSAL.js bundles into ``vendor_dir``; returns it."""
    package_dir = root / "node_modules" / PACKAGE
    wanted, found = pinned_version(root), installed_version(package_dir)
    if found != wanted:
        raise BuildError(
            f"node_modules has {PACKAGE} {found}, package.json pins {wanted}; run `npm ci`"
        )
    vendor_dir.mkdir(parents=True, exist_ok=True)
    for source, name in FILES.items():
        shutil.copyfile(package_dir / source, vendor_dir / name)
    return vendor_dir


def main() -> int:
    try:
        vendor_dir = build()
    except BuildError as exc:
        print(f"build_spa: {exc}", file=sys.stderr)
        return 1
    print(f"{PACKAGE} {pinned_version()} copied to {vendor_dir.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
