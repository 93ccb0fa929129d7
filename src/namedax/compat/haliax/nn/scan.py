"""``haliax.nn.scan``: `Stacked` and `BlockSeq` (re-exports)."""

from .._nn import BlockSeq as BlockSeq
from .._nn import Stacked as Stacked
