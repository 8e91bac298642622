"""``python -m rrdbg`` runs the command line."""

from __future__ import annotations

from rrdbg.cli import entry

entry()
