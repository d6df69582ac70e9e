"""Running the real ``router`` console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("router")
COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else ([found] if (found := shutil.which("router")) else [sys.executable, "-m", "router"])
)


def router(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    module: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``router ARGS`` in ``cwd`` (ROUTER_RULES unset unless ``env`` sets it)."""
    environment = {k: v for k, v in os.environ.items() if k != "ROUTER_RULES"}
    environment.update(env or {})
    command = [sys.executable, "-m", "router"] if module else COMMAND
    done = subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]
