"""Recording and replaying what the guest observes from the host."""

from __future__ import annotations
