"""Generated folders on disk: written whole or not at all, compared with what an experiment
produces (drift), and the generate and check operations over them."""
