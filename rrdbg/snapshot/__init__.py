"""Machine snapshots: qcow2 images (qcow2.py) and the vmstate blob stored in them."""

from __future__ import annotations
