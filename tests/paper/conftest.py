"""Fixtures for the paper exchange transport tests (helpers live in ``paper_support``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import Rest, start_paper


@pytest.fixture(scope="module")
def paper() -> Iterator[EmbeddedPaper]:
    """One server per test module (state is shared: tests must not depend on each other's orders)."""
    p = start_paper()
    yield p
    p.close()


@pytest.fixture(scope="module")
def rest(paper: EmbeddedPaper) -> Rest:
    return Rest(paper)
