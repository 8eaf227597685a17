"""The JSON of ``dbkeeper seed``."""

from typing import Annotated, TypedDict


class SeedJson(TypedDict):
    """What seeding added."""

    patients: Annotated[int, "patients added (--patients)"]
    seed: Annotated[int, "the random seed (--seed): the same seed gives the same data"]
    as_of: Annotated[str, "the data's now: every time is before it but booked appointments"]
    rows: Annotated[dict[str, int], "each table and the rows added to it, in load order"]
    total_rows: Annotated[int, "rows added in all"]
    seconds: Annotated[float, "how long seeding took"]
