"""`Embedding`: a lookup table from integer ids to vectors over named axes."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import random as nxr
from ..core._axis import Axis, AxisSpec, to_axes
from ..core._named_array import NamedArray
from ..ops import dot
from ._normalization import _feature_names
from ._util import key_of, spec


class Embedding(eqx.Module):
    """A table of vectors over ``Embed``, one per element of ``Vocab`` (haliax's ``Embedding``).

    Attributes:
        weight: over ``(Vocab, *Embed)``.
        Vocab: the axis of the ids (static).
        Embed: the axis or axes of each vector (static).

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> import namedax as nx
        >>> Vocab, Embed = nx.Axis("vocab", 10), nx.Axis("embed", 4)
        >>> emb = nx.nn.Embedding.init(Vocab, Embed, key=jax.random.key(0))
        >>> ids = nx.named(jnp.array([[1, 2, 3], [4, 5, 6]]), ("batch", "position"))
        >>> emb(ids).axes
        (Axis('batch', 2), Axis('position', 3), Axis('embed', 4))
    """

    weight: NamedArray
    Vocab: Axis = eqx.field(static=True)
    Embed: Axis | tuple[Axis, ...] = eqx.field(static=True)

    @classmethod
    def init(cls, Vocab: Axis, Embed: AxisSpec | Axis, initializer_range: float = 0.02, *, key: Any) -> Embedding:
        """A new table drawn from ``normal(0, initializer_range**2)`` (haliax's and GPT-2's default).

        Args:
            Vocab: the vocabulary axis, one `Axis`.
            Embed: the embedding axis (or several).
            initializer_range: the standard deviation of the entries.
            key: a PRNG key.

        Returns:
            An `Embedding` (an instance of ``cls``).

        Raises:
            TypeError: ``Vocab`` is not one `Axis`, an axis lacks a size, or ``key`` is not a key.
            ValueError: ``Embed`` shares a name with ``Vocab``.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> emb = nx.nn.Embedding.init(nx.Axis("vocab", 10), nx.Axis("embed", 4), key=jax.random.key(0))
            >>> emb.weight.shape
            {'vocab': 10, 'embed': 4}
        """
        if type(Vocab) is not Axis:
            raise TypeError(f"Embedding.init: `Vocab` must be one Axis, got {Vocab!r}")
        Embed = spec(Embed, "Embedding.init", "Embed")
        if any(a.name == Vocab.name for a in to_axes(Embed)):
            raise ValueError(f"Embedding.init: `Embed` {Embed} reuses the name of `Vocab` {Vocab}")
        weight = nxr.normal(key_of(key, "Embedding.init"), (Vocab,) + to_axes(Embed)) * initializer_range
        return cls(weight=weight, Vocab=Vocab, Embed=Embed)

    def __call__(self, ids: NamedArray | int, *, key: Any = None) -> NamedArray:
        """Look ids up: the same as `embed` (``key`` is unused)."""
        del key
        return self.embed(ids)

    def embed(self, ids: NamedArray | int) -> NamedArray:
        """The vectors of ``ids``.

        Args:
            ids: an integer NamedArray (any axes but ``Vocab`` and ``Embed``) or one int. As in
                jax.numpy indexing, negative ids count from the end and ids past the end are clamped.

        Returns:
            A NamedArray over ``ids.axes + Embed``.

        Raises:
            TypeError: ``ids`` is not integer, or is a plain array (name its axes).
            ValueError: ``ids`` has an axis named like ``Vocab`` or ``Embed``.

        Examples:
            >>> import jax
            >>> import jax.numpy as jnp
            >>> import namedax as nx
            >>> emb = nx.nn.Embedding.init(nx.Axis("vocab", 10), nx.Axis("embed", 4), key=jax.random.key(0))
            >>> ids = nx.named(jnp.array([3, 3, 7]), "position")
            >>> v = emb.embed(ids)
            >>> bool((v["position", 0].array == emb.weight["vocab", 3].array).all())
            True
        """
        if isinstance(ids, NamedArray):
            if not jnp.issubdtype(ids.dtype, jnp.integer):
                raise TypeError(f"Embedding: ids must be integers, got dtype {ids.dtype} over {ids.axes}")
            taken = {self.Vocab.name} | {a.name for a in to_axes(self.Embed)}
            clash = [a.name for a in ids.axes if a.name in taken]
            if clash:
                raise ValueError(
                    f"Embedding: the ids {ids.axes} have axes {clash}, which the table {self.weight.axes} uses; "
                    "rename them"
                )
        elif not (isinstance(ids, int | np.integer) and not isinstance(ids, bool)):
            raise TypeError(
                f"Embedding: ids must be an integer NamedArray or an int, got {type(ids).__name__}"
                + (f" of shape {getattr(ids, 'shape')}; name its axes with nx.named" if hasattr(ids, "shape") else "")
            )
        return self.weight[self.Vocab.name, ids]

    def unembed(self, x: NamedArray) -> NamedArray:
        """Logits over ``Vocab``: the dot product of ``x`` with every vector (tied output embedding).

        Args:
            x: a NamedArray holding the ``Embed`` axes.

        Returns:
            A NamedArray over the other axes of ``x``, then ``Vocab``.

        Raises:
            AxisNotFoundError: ``x`` lacks an ``Embed`` axis (the message lists the axes it has).
            ValueError: an ``Embed`` axis has another size in ``x``, or ``x`` already has ``Vocab``.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> emb = nx.nn.Embedding.init(nx.Axis("vocab", 10), nx.Axis("embed", 4), key=jax.random.key(0))
            >>> emb.unembed(nx.ones({"batch": 2, "embed": 4})).axes
            (Axis('batch', 2), Axis('vocab', 10))
        """
        names = _feature_names("Embedding.unembed", self.Embed, x)
        if any(a.name == self.Vocab.name for a in x.axes):
            raise ValueError(
                f"Embedding.unembed: the input {x.axes} already has the vocabulary axis {self.Vocab.name!r}; rename it"
            )
        return dot(x, self.weight, axis=names)
