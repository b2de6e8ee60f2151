"""Shared machinery for ``onsale bench``: closed-loop clients and load processes.

A benchmark supplies a :class:`Session` (one load process's connections and the measured
operation) through a picklable factory. The harness runs N concurrent clients against a
target until the target is exhausted or a deadline passes, optionally spread over several
load-generator processes, each with its own uvloop event loop, and merges what they measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import msgspec
import uvloop

#: Lead time between scheduling a run and its start, so that every process starts together.
START_LEAD_S = 0.1


class BenchError(RuntimeError):
    """A load process failed; the message carries its traceback."""


class Exhausted(Exception):
    """Raised by :meth:`Session.take` when the target has nothing left: that client stops."""


class Session(Protocol):
    """One load process's connections for one benchmark cell, and the measured operation."""

    async def open(self) -> None: ...

    async def take(self, client: int, target: str) -> int:
        """One operation by ``client``: the attempts it needed (>= 1), or :class:`Exhausted`."""
        ...

    async def close(self) -> None: ...


SessionFactory = Callable[[str, str, int], Session]
"""(approach, url, clients) -> Session. Must be a module-level function: it is pickled."""


class RunResult(msgspec.Struct):
    """What the clients of one process (or of all processes, merged) measured in one run."""

    started_at: float
    finished_at: float = 0.0
    granted: int = 0
    attempts: int = 0
    #: Seconds per granted operation, its retries included.
    latencies: list[float] = msgspec.field(default_factory=list)
    #: Every client stopped because the target was exhausted, not because of the deadline.
    exhausted: bool = False

    @property
    def elapsed(self) -> float:
        return max(self.finished_at - self.started_at, 1e-9)

    @property
    def rate(self) -> float:
        return self.granted / self.elapsed

    @classmethod
    def merge(cls, parts: Sequence[RunResult]) -> RunResult:
        return cls(
            started_at=min(p.started_at for p in parts),
            finished_at=max(p.finished_at for p in parts),
            granted=sum(p.granted for p in parts),
            attempts=sum(p.attempts for p in parts),
            latencies=[x for p in parts for x in p.latencies],
            exhausted=all(p.exhausted for p in parts),
        )


async def run_clients(
    session: Session, clients: int, target: str, start_at: float, deadline: float
) -> RunResult:
    """Closed loop: each client repeats ``take`` back to back until exhausted or the deadline.

    ``start_at`` and ``deadline`` are ``time.monotonic()`` instants: on Linux one clock for
    every process, so that separate load processes start and stop together.
    """
    result = RunResult(started_at=start_at)
    latencies = result.latencies
    monotonic, perf = time.monotonic, time.perf_counter

    async def client(i: int) -> bool:
        granted = attempts = 0
        try:
            while monotonic() < deadline:
                t0 = perf()
                attempts += await session.take(i, target)
                latencies.append(perf() - t0)
                granted += 1
            return False
        except Exhausted:
            return True
        finally:
            result.granted += granted
            result.attempts += attempts

    await asyncio.sleep(max(start_at - monotonic(), 0.0))
    # A task group, so that one client's failure stops the others before the error is told.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(client(i)) for i in range(clients)]
    result.finished_at = monotonic()
    result.exhausted = all(t.result() for t in tasks)
    return result


def _serve(conn: Connection, factory: SessionFactory) -> None:
    """A load process: obeys the parent's commands until told to exit or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle.
    encode = msgspec.msgpack.Encoder().encode
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        session: Session | None = None
        clients = 0
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                return
            try:
                reply: Any = None
                if command == "open":
                    approach, url, clients = args
                    session = factory(approach, url, clients)
                    runner.run(session.open())
                elif command == "run" and session is not None:
                    reply = encode(runner.run(run_clients(session, clients, *args)))
                elif command == "close" and session is not None:
                    runner.run(session.close())
                    session = None
                elif command == "exit":
                    return
                conn.send(("ok", reply))
            except Exception:
                conn.send(("error", traceback.format_exc()))


class LoadPool:
    """Runs a benchmark's clients in this process (``processes=0``) or in N load processes.

    Several processes matter when the client library's CPU, not the server, is the limit.
    """

    def __init__(self, factory: SessionFactory, processes: int = 0) -> None:
        self.factory = factory
        self.processes = processes
        self._pipes: list[Connection] = []
        self._procs: list[BaseProcess] = []
        self._active: list[tuple[Connection, int]] = []
        self._local: Session | None = None
        self._clients = 0
        self._decode = msgspec.msgpack.Decoder(RunResult).decode

    def start(self) -> None:
        # spawn, not fork: the parent runs an event loop and owns server processes.
        ctx = mp.get_context("spawn")
        for _ in range(self.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, self.factory), daemon=True)
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):  # it may have died already
                pipe.send(("exit",))
            pipe.close()
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self._pipes.clear()
        self._procs.clear()

    async def _ask(self, messages: Sequence[tuple[Connection, tuple[Any, ...]]]) -> list[Any]:
        try:
            for pipe, message in messages:
                pipe.send(message)
            replies = await asyncio.gather(*(asyncio.to_thread(p.recv) for p, _ in messages))
        except (EOFError, OSError) as exc:
            raise BenchError(f"a load process died: {exc!r}") from exc
        for status, payload in replies:
            if status != "ok":
                raise BenchError(f"a load process failed:\n{payload}")
        return [payload for _, payload in replies]

    async def open(self, approach: str, url: str, clients: int) -> None:
        """Connect ``clients`` clients, shared out as evenly as the processes allow."""
        self._clients = clients
        if not self._pipes:
            self._local = self.factory(approach, url, clients)
            await self._local.open()
            return
        n = len(self._pipes)
        shares = [clients // n + (1 if i < clients % n else 0) for i in range(n)]
        self._active = [(p, s) for p, s in zip(self._pipes, shares, strict=True) if s]
        await self._ask([(p, ("open", approach, url, s)) for p, s in self._active])

    async def run(self, target: str, max_seconds: float) -> RunResult:
        """All clients against ``target`` until it is exhausted or ``max_seconds`` pass."""
        start_at = time.monotonic() + START_LEAD_S
        deadline = start_at + max_seconds
        if self._local is not None:
            return await run_clients(self._local, self._clients, target, start_at, deadline)
        replies = await self._ask(
            [(p, ("run", target, start_at, deadline)) for p, _ in self._active]
        )
        return RunResult.merge([self._decode(r) for r in replies])

    async def close(self) -> None:
        if self._local is not None:
            await self._local.close()
            self._local = None
        elif self._active:
            await self._ask([(p, ("close",)) for p, _ in self._active])
            self._active = []
