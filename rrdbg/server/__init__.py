"""The GDB server (the only part of rrdbg that imports trio)."""
