"""The JSON of ``dbkeeper wait``."""

from typing import Annotated, Literal, TypedDict


class WaitJson(TypedDict):
    """The database reached the revision (a timeout is an error, with no JSON)."""

    revision: Annotated[str, "the revision waited for (--revision)"]
    current_revision: Annotated[str | None, "the database's revision, it or a later one"]
    migration_set: Annotated[str | None, "the set of the database's latest move"]
    reached: Annotated[Literal[True], "always true"]
