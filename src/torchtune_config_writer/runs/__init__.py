"""After the sweep: the runs an experiment planned, and what each wrote (status, results)."""
