"""From an experiment to the bytes of its generated files, in memory: the recorded base, where
each parameter goes, the sweep, output folders, launch commands, rendering."""
