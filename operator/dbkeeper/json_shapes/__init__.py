"""The shapes of the JSON objects dbkeeper prints with ``-o json``: one module per
command area, one ``TypedDict`` per object.

The handlers build their output as these types, so mypy holds the code to the declared
shape; ``docs/cli.md`` lists every key from them (:mod:`dbkeeper.cli.reference`), and
the tests hold each command's actual output to them. Every key is declared as
``Annotated[type, "what it means"]``: the description lives on the key's own line and
goes wherever the key goes, also into a shape that extends the one declaring it.

These modules import nothing but ``typing``, :mod:`dbkeeper.vocabulary` and each other:
the parsers name their command's shapes, and building a parser must stay light; the
engine's ``to_dict()`` methods return them too. They do not use
``from __future__ import annotations``: Python 3.11 reads ``NotRequired`` correctly only
from annotations that are not strings.
"""

from collections.abc import Mapping

JsonShape = type[Mapping[str, object]]
"""A ``TypedDict`` class declaring one JSON object."""
