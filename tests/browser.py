"""Headless Chromium for tests that load a page as a person's browser would (Debian's `chromium`, which .ci/run installs)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-dev-shm-usage")


def chromium() -> str | None:
    """The browser's path, or None when none is installed."""
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def dump_dom(url: str, *, budget_ms: int = 10_000, timeout_s: float = 90.0) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time (waiting on its network requests)."""
    binary = chromium()
    assert binary is not None, "no chromium on PATH"
    with tempfile.TemporaryDirectory(prefix="sessionrec-chromium-") as profile:
        done = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"chromium exited with {done.returncode}: {done.stderr[-500:]}"
    return done.stdout
