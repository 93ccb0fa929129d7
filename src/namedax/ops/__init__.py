"""The named jax.numpy surface: every function takes and returns NamedArrays, axes by name."""

# --- creation ---
from ._creation import (
    arange as arange,
    concatenate as concatenate,
    full as full,
    full_like as full_like,
    linspace as linspace,
    logspace as logspace,
    ones as ones,
    ones_like as ones_like,
    stack as stack,
    zeros as zeros,
    zeros_like as zeros_like,
)

# --- elementwise (owned by ops/_elementwise.py) ---
# --- end elementwise ---

# --- reductions (owned by ops/_reductions.py) ---
# --- end reductions ---

# --- linalg (owned by ops/_linalg.py) ---
# --- end linalg ---

# --- shape (owned by ops/_shape.py) ---
# --- end shape ---
