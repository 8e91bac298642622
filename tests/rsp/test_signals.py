"""gdb's signal numbers against Linux's (signals.def and signal(7))."""

from __future__ import annotations

from rrdbg.rsp.signals import from_gdb, to_gdb


def test_known_pairs() -> None:
    pairs = {
        1: 1,  # SIGHUP
        6: 6,  # SIGABRT
        7: 10,  # SIGBUS
        10: 30,  # SIGUSR1
        11: 11,  # SIGSEGV
        12: 31,  # SIGUSR2
        14: 14,  # SIGALRM
        17: 20,  # SIGCHLD
        19: 17,  # SIGSTOP
        29: 23,  # SIGIO
        31: 12,  # SIGSYS
        32: 77,
        33: 45,
        63: 75,
        64: 78,
    }
    for linux, gdb in pairs.items():
        assert to_gdb(linux) == gdb
        assert from_gdb(gdb) == linux


def test_every_linux_signal_round_trips() -> None:
    for linux in range(1, 65):
        assert from_gdb(to_gdb(linux)) == linux
    # gdb numbers with no Linux signal (SIGEMT 7, SIGLOST 29, SIGWIND 35...).
    assert from_gdb(7) is None
    assert from_gdb(35) is None
    assert from_gdb(0) is None
