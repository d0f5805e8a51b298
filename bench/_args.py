"""The one command line every bench shares: its own flags plus ``--quick``.

``--quick`` is what tests/test_benches.py runs so no bench rots: a short run proving the bench
still works, not its figures. Quick mode swaps in the bench's own quick defaults; a flag given
explicitly on the command line still wins over them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def parse(doc: str | None, add: Callable[[argparse.ArgumentParser], None], quick: dict[str, Any],
          quick_help: str) -> argparse.Namespace:
    """Parse the bench's flags (``add`` declares them) and ``--quick`` (``quick`` its defaults)."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    add(ap)
    ap.add_argument("--quick", action="store_true",
                    help=f"a short run proving the bench works (tests/test_benches.py): {quick_help}")
    args = ap.parse_args()
    if args.quick:
        ap.set_defaults(**quick)
        args = ap.parse_args()
    return args


def need_lab(bench: str, why: str | None) -> None:
    """Stop with one line when the lab (or a reference tool) is missing: ``why`` says which."""
    if why is not None:
        sys.exit(f"bench/{bench}: {why}")
