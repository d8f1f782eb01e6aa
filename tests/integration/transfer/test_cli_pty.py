"""The installed console script in a pseudo-terminal: `projections rebuild` and `copy` draw a
progress bar with events per second and the time left (ETA), and finish with a summary."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transfer_support import seed, sqlite_store

HERE = Path(__file__).parent
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _script() -> str:
    found = shutil.which("eventsource", path=os.path.dirname(sys.executable))
    assert found is not None, "the console script is not installed: pip install -e '.[dev]'"
    return found


def _in_terminal(*args: str) -> tuple[int, str]:
    """Run the console script with a pseudo-terminal as stdin, stdout and stderr: (exit
    code, everything it drew, without the escape sequences)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSOURCE_")}
    env.update(PYTHONPATH=str(HERE), COLUMNS="120", TERM="xterm")
    with subprocess.Popen(
        [_script(), *args], stdin=follower, stdout=follower, stderr=follower, env=env,
        cwd=HERE,
    ) as child:
        os.close(follower)
        drawn = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        code = child.wait(timeout=300)
    os.close(leader)
    return code, _ANSI.sub("", drawn.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pty") / "events.db"

    async def fill() -> None:
        async with sqlite_store(path) as store:
            await seed(store, 20_000)

    asyncio.run(fill())
    return path


def test_projections_rebuild_draws_a_progress_bar(seeded: Path) -> None:
    code, drawn = _in_terminal(
        "--url", f"sqlite:///{seeded}", "--app", "transfer_support:cli_app",
        "projections", "rebuild", "CartTotals", "--yes",
    )
    assert code == 0, drawn
    assert "rebuild CartTotals" in drawn
    assert re.search(r"\d[\d,]* events/s", drawn), drawn
    assert re.search(r"ETA \d+:\d\d:\d\d", drawn), drawn
    total = re.search(r"rebuilt CartTotals: ([\d,]+) events read", drawn)
    assert total is not None, drawn
    assert f"{total[1].replace(',', '')}/{total[1].replace(',', '')}" in drawn  # the full bar


def test_copy_draws_a_progress_bar(seeded: Path, tmp_path: Path) -> None:
    code, drawn = _in_terminal(
        "--url", f"sqlite:///{seeded}", "--app", "transfer_support:cli_app", "copy",
        "--to", f"sqlite:///{tmp_path / 'copy.db'}", "--transform",
        "transfer_support:merge_priced", "--yes",
    )
    assert code == 0, drawn
    assert re.search(r"copy .*\d[\d,]* events/s +ETA", drawn), drawn
    assert "copied into sqlite:///" in drawn
