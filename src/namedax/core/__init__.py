"""Axis, NamedArray, broadcasting and indexing by name, and the eager kernel cache (re-exported by `namedax`)."""
