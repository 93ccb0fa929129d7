"""``haliax.util`` (re-exports)."""

from ._core import is_named_array as is_named_array
