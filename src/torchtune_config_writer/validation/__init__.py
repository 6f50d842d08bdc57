"""Checking generated configs against torchtune itself: the only subpackage that imports torch
and torchtune, and only when validation runs."""
