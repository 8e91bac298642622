"""Time travel over one run: history, checkpoints, seeks and resumes by icount."""
