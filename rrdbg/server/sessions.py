"""What a new gdb connection gets: session factories for ``replay`` and ``debug``.

- ``replay``: every connection starts a fresh timeline at icount 0 over the
  (immutable) recording; quitting gdb detaches.
- ``debug``: one live timeline for the life of the server; a client that
  vanishes leaves it for the next one, ``k`` ends the guest and the server,
  and ``D`` lets the guest run to its end (still recording) and then ends.
"""

from __future__ import annotations

from collections.abc import Callable

from rrdbg.rsp import Capability
from rrdbg.server.gdb import PACKET_SIZE, SessionFactory, stop_server
from rrdbg.target.interface import Direction
from rrdbg.target.session import Session
from rrdbg.timeline.timeline import Timeline


def capabilities(timeline: Timeline) -> frozenset[Capability]:
    caps = frozenset(Capability)
    if not timeline.can_reverse:
        caps -= {Capability.REVERSE}
    return caps


def replay_sessions(make_timeline: Callable[[], Timeline]) -> SessionFactory:
    def make() -> tuple[Session, Callable[[bool], None]]:
        timeline = make_timeline()
        session = Session(
            timeline, capabilities=capabilities(timeline), packet_size=PACKET_SIZE, attached=True
        )

        def finish(_goodbye: bool) -> None:
            timeline.close()
            if session.goodbye == "exit":
                stop_server()

        return session, finish

    return make


def live_sessions(timeline: Timeline, on_end: Callable[[], None]) -> SessionFactory:
    def make() -> tuple[Session, Callable[[bool], None]]:
        session = Session(
            timeline, capabilities=capabilities(timeline), packet_size=PACKET_SIZE, attached=False
        )

        def finish(goodbye: bool) -> None:
            if not goodbye and timeline.machine.exit is None:
                timeline.detach()  # the next client starts with no stale points
                return
            if session.goodbye == "detach":
                # gdb let go of a process rrdbg started: it runs on to its end.
                while timeline.machine.exit is None:
                    timeline.resume(step=False, direction=Direction.FORWARD, interrupted=_never)
            on_end()
            stop_server()

        return session, finish

    return make


def _never() -> bool:
    return False
