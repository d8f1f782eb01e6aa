"""The `eventsource` command line (the `cli` extra): see docs/cli.md.

`CliApp` is what an `--app module:factory` factory returns. Importing this package loads
neither Click nor a database driver; the command itself is `eventsource.cli.app:main`.
"""

from __future__ import annotations

from eventsource.cli._app import CliApp

__all__ = ["CliApp"]
