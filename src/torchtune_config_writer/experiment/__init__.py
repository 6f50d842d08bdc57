"""The experiment file: reading it and checking its format (no torchtune, no files written)."""
