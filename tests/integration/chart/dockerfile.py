"""A small reader of the repository's Dockerfile: its stages and instructions.

Enough to find what the build stage copies and to check the image's key properties;
not a general Dockerfile parser (no heredocs, no ONBUILD).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


@dataclass(frozen=True)
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        args: dict[str, str] = {}
        stages: list[Stage] = []
        for keyword, arguments in _instructions(path.read_text()):
            if keyword == "FROM":
                words = arguments.split()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(_expand(words[0], args), name))
            elif keyword == "ARG" and not stages:
                key, _, default = arguments.partition("=")
                args[key.strip()] = default.strip()
            elif stages:
                stages[-1].instructions.append(Instruction(keyword, arguments))
        return cls(args, stages)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def build_stage_sources(self) -> list[str]:
        """The paths the first stage COPYs from the build context."""
        sources: list[str] = []
        for arguments in self.stages[0].all("COPY"):
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            sources += [w.rstrip("/") for w in words[:-1]]
        return sources


def _expand(text: str, args: dict[str, str]) -> str:
    for key, value in args.items():
        text = text.replace(f"${{{key}}}", value).replace(f"${key}", value)
    return text


def _instructions(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append((keyword.upper(), arguments.strip()))
    return found
