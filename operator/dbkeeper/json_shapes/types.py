"""The JSON of ``dbkeeper types typescript``."""

from typing import Annotated, Literal, NotRequired, TypedDict


class TypesModuleJson(TypedDict):
    """The module written (--out) or found up to date (--check)."""

    migration_set: Annotated[str, "the migration set of the database"]
    revision: Annotated[str | None, "the database's revision; null: base"]
    tables: Annotated[int, "tables declared in the module"]
    file: Annotated[str, "the module's file"]
    stale: NotRequired[Annotated[Literal[False], "with --check: false, the file is up to date"]]
