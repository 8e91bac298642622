"""The debugger-facing side: the Target interface, the i386 register description,
and the session that turns protocol requests into target calls."""
