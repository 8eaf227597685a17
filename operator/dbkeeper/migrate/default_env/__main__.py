"""``python -m dbkeeper.migrate.default_env FILES TARGET``: the migration Job's init step.

Exits 1 with one line on stderr when the set cannot be assembled; the init container's
termination message (the end of its log) then says why.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dbkeeper.migrate.default_env import assemble_set


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m dbkeeper.migrate.default_env FILES TARGET", file=sys.stderr)
        return 2
    files, target = (Path(arg) for arg in argv)
    try:
        assemble_set(files, target)
    except OSError as exc:
        print(f"cannot assemble the migration set in {target}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
