"""``python -m kaizen_pipeline.settings [--write | --check] [--path docs/configuration.md]``.

Without a flag the configuration reference is printed; ``--write`` writes it to the file, ``--check``
exits 1 when the file is missing or differs from what the settings models generate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from kaizen_pipeline.settings.reference import (
    DOCS_PATH,
    WRITE_COMMAND,
    reference_is_current,
    render_reference,
    write_reference,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaizen_pipeline.settings", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the reference file")
    mode.add_argument("--check", action="store_true", help="exit 1 when the reference file is stale")
    parser.add_argument("--path", type=Path, default=DOCS_PATH, help=f"reference file (default {DOCS_PATH})")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {write_reference(args.path)}")
        return 0
    if args.check:
        if reference_is_current(args.path):
            return 0
        print(f"{args.path} is stale or missing: run `{WRITE_COMMAND}`", file=sys.stderr)
        return 1
    sys.stdout.write(render_reference())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
