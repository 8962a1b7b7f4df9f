"""The browser tests' fixtures, and where their screenshots are (printed after the run)."""

from __future__ import annotations

import pytest

from tests.console.browser import SCREENSHOTS, TAKEN, browser  # noqa: F401 - a fixture
from tests.workflows.conftest import time_skipping  # noqa: F401 - a fixture


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TAKEN:
        terminalreporter.write_line(f"console screenshots ({len(TAKEN)}): {SCREENSHOTS}")
