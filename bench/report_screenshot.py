"""Render an HTML report in headless Chromium and save a PNG screenshot (what a person sees).

    python bench/report_screenshot.py REPORT.html OUT.png

Needs Debian's chromium (`apt-get install chromium`). Flags as this workplace requires: no
sandbox as root, no GPU, no background networking (the machine has no internet).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}", "--hide-scrollbars",
                        f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    return png


if __name__ == "__main__":
    out = screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
