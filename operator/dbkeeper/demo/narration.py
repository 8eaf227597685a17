"""How the demo talks to a newcomer: numbered steps, short indented lines, no log walls."""

from __future__ import annotations

from typing import TextIO


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._steps = 0

    def step(self, title: str) -> None:
        self._steps += 1
        print(f"\n{self._steps}. {title}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            print(f"  {line}" if line else "", file=self.out, flush=True)

    def block(self, text: str) -> None:
        """Already formatted text (a table), printed as it is."""
        print(text, file=self.out, flush=True)

    def heading(self, text: str) -> None:
        print(text, file=self.out, flush=True)
