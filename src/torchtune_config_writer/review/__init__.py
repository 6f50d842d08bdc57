"""Reviewing a change: what it does to every run, for the terminal and the pull request."""
