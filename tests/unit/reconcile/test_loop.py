"""The per-resource loop: one pass at a time, woken by changes, clean on stop.

The loop runs in an event loop of its own here with kopf's pieces replaced by small
stand-ins (the stop flag, the pass itself); ordering is shown by counters and flags,
never by how long something took.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import kopf
import pytest

from dbkeeper import kopf_glue
from dbkeeper.kube import KubeClient, ObjectRef, WorkAbandoned
from dbkeeper.reconcile.passes import PassResult, signature_of
from dbkeeper.settings import Settings

SETTINGS = Settings(
    recheck_interval=timedelta(seconds=30),
    retry_delay=timedelta(seconds=1),
    shutdown_timeout=timedelta(seconds=10),
    metrics_port=0,
    health_port=0,
)
BODY: dict[str, Any] = {"metadata": {"namespace": "health", "name": "clinic", "generation": 1}}


class StopFlag:
    """kopf's daemon stop flag, as far as the loop uses it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self) -> None:
        await self.event.wait()


class PassRuntime:
    """What ``for_pass`` hands a pass: here only the abandonment flag matters."""

    def __init__(self, abandoned: threading.Event | None = None) -> None:
        self.abandoned = abandoned

    def for_pass(self, abandoned: threading.Event) -> PassRuntime:
        return PassRuntime(abandoned)


class Passes:
    """A stand-in for ``run_pass`` that counts passes and how many ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.count = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.saw_abandoned = False
        self.generation = 1

    def __call__(
        self, namespace: str, name: str, runtime: PassRuntime, settings: Settings, **_: Any
    ) -> PassResult:
        with self.lock:
            self.running += 1
            self.count += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.set()
        assert runtime.abandoned is not None
        while not self.release.wait(0.01):
            if runtime.abandoned.is_set():
                self.saw_abandoned = True
                break
        with self.lock:
            self.running -= 1
        return PassResult(phase="Ready", signature=signature_of(self.generation, {}))


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Passes:
    fake = Passes()
    monkeypatch.setattr(kopf_glue, "run_pass", fake)
    return fake


@pytest.fixture
def memo() -> Iterator[kopf.Memo]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        context = kopf_glue.OperatorContext(
            SETTINGS,
            PassRuntime(),  # type: ignore[arg-type]
            executor=executor,
        )
        memo = kopf.Memo()
        memo[kopf_glue.MEMO_KEY] = context
        yield memo


async def _until(check: Any, what: str) -> None:
    for _ in range(3000):  # 30 s, generous
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _changed(generation: int) -> dict[str, Any]:
    return {"metadata": {**BODY["metadata"], "generation": generation}}


def test_wake_ups_while_a_pass_runs_never_start_a_second_one(
    passes: Passes, memo: kopf.Memo
) -> None:
    async def scenario() -> None:
        stopped = StopFlag()
        passes.release.clear()
        loop = asyncio.ensure_future(kopf_glue.run_loop(BODY, memo, stopped))
        await _until(passes.started.is_set, "the first pass")
        for generation in range(2, 12):  # many changes arrive during one pass
            passes.generation = generation
            kopf_glue.wake(memo, _changed(generation))
            await asyncio.sleep(0)
        passes.release.set()
        await _until(lambda: passes.count >= 2, "a pass for the changes")
        stopped.event.set()
        await asyncio.wait_for(loop, 30)

    asyncio.run(scenario())

    assert passes.most_at_once == 1
    # All the changes that arrived during the first pass were answered by one more.
    assert passes.count == 2


def test_a_status_write_of_our_own_wakes_nothing(passes: Passes, memo: kopf.Memo) -> None:
    async def scenario() -> None:
        stopped = StopFlag()
        loop = asyncio.ensure_future(kopf_glue.run_loop(BODY, memo, stopped))
        await _until(lambda: passes.count == 1 and passes.running == 0, "the first pass")
        # Same generation and annotations: a status change, ours or anyone's.
        kopf_glue.wake(memo, {"metadata": {**BODY["metadata"]}, "status": {"phase": "Ready"}})
        await asyncio.sleep(0.1)
        stopped.event.set()
        await asyncio.wait_for(loop, 30)

    asyncio.run(scenario())

    assert passes.count == 1


def test_stopping_abandons_the_running_pass_and_the_loop_ends(
    passes: Passes, memo: kopf.Memo
) -> None:
    async def scenario() -> None:
        stopped = StopFlag()
        passes.release.clear()  # the pass would run forever unless abandoned
        loop = asyncio.ensure_future(kopf_glue.run_loop(BODY, memo, stopped))
        await _until(passes.started.is_set, "the pass to start")
        stopped.event.set()
        await asyncio.wait_for(loop, 30)

    asyncio.run(scenario())

    assert passes.saw_abandoned
    context: kopf_glue.OperatorContext = memo[kopf_glue.MEMO_KEY]
    assert context.loops["health/clinic"].abandoned.is_set()


def test_an_abandoned_client_refuses_writes_before_sending_them() -> None:
    abandoned = threading.Event()
    client = KubeClient(api_client=object(), abandoned=abandoned)  # type: ignore[arg-type]
    abandoned.set()

    with pytest.raises(WorkAbandoned):
        client.patch_status("DatabaseSchema", "health", "clinic", {"phase": "Ready"}, "7")
    with pytest.raises(WorkAbandoned):
        client.post_event(
            ObjectRef("dbkeeper.dev/v1alpha1", "DatabaseSchema", "health", "clinic"),
            "Normal",
            "Test",
            "never sent",
        )


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        # Done: the re-check interval; a permanent failure waits for a change just as long.
        ([PassResult("Ready")], [30.0]),
        ([PassResult("Failed", failed=True)], [30.0]),
        # Temporary: the retry delay, doubling per failure in a row, capped at 5 min.
        ([PassResult("Pending", retry_after=1.0)] * 4, [1.0, 2.0, 4.0, 8.0]),
        ([PassResult("Pending", retry_after=1.0)] * 12, [*[2.0**i for i in range(7)], *[64.0] * 5]),
        ([PassResult("Pending", retry_after=200.0)] * 3, [200.0, 300.0, 300.0]),
        # Success resets the backoff.
        (
            [PassResult("Pending", retry_after=1.0)] * 2
            + [PassResult("Ready"), PassResult("Pending", retry_after=1.0)],
            [1.0, 2.0, 30.0, 1.0],
        ),
    ],
)
def test_next_pass_delay(results: list[PassResult], expected: list[float]) -> None:
    loop = kopf_glue.ResourceLoop("health/clinic")
    assert [kopf_glue._next_delay(loop, r, SETTINGS) for r in results] == expected


def test_a_permanent_failure_is_remembered_until_a_pass_succeeds() -> None:
    loop = kopf_glue.ResourceLoop("health/clinic")
    failed_at = signature_of(3, {})

    kopf_glue._next_delay(loop, PassResult("Failed", failed=True, signature=failed_at), SETTINGS)
    assert loop.failed_at == failed_at
    kopf_glue._next_delay(loop, PassResult("Ready", signature=signature_of(4, {})), SETTINGS)
    assert loop.failed_at is None
