"""``python -m botcore_exchange_paper serve ...``: ``botcore paper serve`` without loading every plugin.

``botcore run`` starts its child exchange this way: nothing but the paper exchange is imported,
and the plugin allow/block lists of the environment cannot keep it from starting.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from botcore_exchange_paper.cli import setup


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m botcore_exchange_paper", description=setup.__doc__)
    run = setup(parser)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level="WARNING", stream=sys.stderr, format="%(asctime)s %(levelname)s paper %(name)s: %(message)s"
        )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
