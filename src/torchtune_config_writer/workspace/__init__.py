"""Where experiments and their generated folders live: the names of generated files, the
state of a folder, the git repository around them, and which experiments a change affects."""
