"""Open a Prefect deployment's page in headless Chromium; save a screenshot and the page text.

    python tools/prefect_ui_snapshot.py --api http://127.0.0.1:4200/api \
        --deployment pipeline/nightly --out reports/prefect-ui.png

Needs Debian's `chromium` (apt-get install chromium). The server must serve its UI with the
right API address: start it with PREFECT_UI_API_URL=http://127.0.0.1:<port>/api.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
]


def chromium() -> str:
    """Path of the Chromium binary, or RuntimeError."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("chromium not found: apt-get install chromium")


def _chromium(url: str, *action: str, budget_ms: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--virtual-time-budget={budget_ms}", *action, url],
            capture_output=True, text=True, timeout=120, check=True,
        )


def page_text(url: str, budget_ms: int = 30000) -> str:
    """Visible text of the page after its scripts ran (tags stripped, spaces collapsed)."""
    dom = _chromium(url, "--dump-dom", budget_ms=budget_ms).stdout
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()


def screenshot(url: str, out: Path, budget_ms: int = 30000) -> Path:
    """Save a PNG of the rendered page."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _chromium(url, f"--screenshot={out.resolve()}", budget_ms=budget_ms)
    return out


def deployment_url(api: str, name: str) -> str:
    """UI address of deployment `flow/deployment` on the server at `api`."""
    with urllib.request.urlopen(f"{api}/deployments/name/{name}", timeout=30) as resp:
        dep_id = json.loads(resp.read())["id"]
    return f"{api.removesuffix('/api')}/deployments/deployment/{dep_id}"


def main() -> None:
    """CLI: snapshot one deployment page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:4200/api")
    parser.add_argument("--deployment", default="pipeline/nightly")
    parser.add_argument("--out", type=Path, default=Path("reports/prefect-ui.png"))
    args = parser.parse_args()
    url = deployment_url(args.api, args.deployment)
    screenshot(url, args.out)
    print(f"saved {args.out} of {url}\n{page_text(url)[:600]}")


if __name__ == "__main__":
    main()
