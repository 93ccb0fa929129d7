"""Adapters for code written against other named-axis libraries: `namedax.compat.haliax`."""
