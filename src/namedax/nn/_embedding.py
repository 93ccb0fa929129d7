"""`Embedding`: a lookup table from integer ids to vectors over named axes."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import random as nxr
from ..core._axis import Axis, AxisSpec, to_axes
from ..core._named_array import NamedArray
from ..ops import dot
from ._normalization import _feature_names
from ._util import check_named, module_call, spec


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
    def init(
        cls,
        Vocab: Axis,
        Embed: AxisSpec | Axis,
        initializer_range: float | None = None,
        *,
        key: Any,
        init_scale: float | None = None,
        dtype: Any = None,
    ) -> Embedding:
        """A new table drawn from ``normal(0, init_scale**2)`` (GPT-2's default standard deviation 0.02).

        Args:
            Vocab: the vocabulary axis, one `Axis`.
            Embed: the embedding axis (or several).
            initializer_range: the old name of ``init_scale`` (positional or keyword), kept as an alias.
            key: a PRNG key.
            init_scale: the standard deviation of the entries (default 0.02). haliax's
                ``Embedding.init`` has the same keyword but draws a truncated normal divided by the
                ``Embed`` size; namedax keeps the plain standard deviation.
            dtype: the table's float dtype (default: JAX's default float).

        Returns:
            An `Embedding` (an instance of ``cls``).

        Raises:
            TypeError: ``Vocab`` is not one `Axis`, an axis lacks a size, ``key`` is not a key, or both
                ``init_scale`` and ``initializer_range`` are given.
            ValueError: ``Embed`` shares a name with ``Vocab``.

        Examples:
            >>> import jax
            >>> import namedax as nx
            >>> Vocab, Embed = nx.Axis("vocab", 10), nx.Axis("embed", 4)
            >>> emb = nx.nn.Embedding.init(Vocab, Embed, key=jax.random.key(0))
            >>> emb.weight.shape
            {'vocab': 10, 'embed': 4}
            >>> wide = nx.nn.Embedding.init(Vocab, Embed, key=jax.random.key(0), init_scale=1.0)
            >>> bool((wide.weight.array * 0.02 == emb.weight.array).all())
            True
        """
        op = "Embedding.init"
        if initializer_range is not None and init_scale is not None:
            raise TypeError(f"{op}: give `init_scale` only (`initializer_range` is its old name), not both")
        scale = next((v for v in (init_scale, initializer_range) if v is not None), 0.02)
        if type(Vocab) is not Axis:
            raise TypeError(f"{op}: `Vocab` must be one Axis, got {Vocab!r}")
        Embed = spec(Embed, op, "Embed")
        if any(a.name == Vocab.name for a in to_axes(Embed)):
            raise ValueError(f"{op}: `Embed` {Embed} reuses the name of `Vocab` {Vocab}")
        weight = nxr.normal(nxr._check_key(op, key), (Vocab,) + to_axes(Embed), dtype) * scale
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
            if hasattr(ids, "shape"):
                check_named(ids, "Embedding", "`ids` (an integer NamedArray or an int)")
            raise TypeError(f"Embedding: ids must be an integer NamedArray or an int, got {type(ids).__name__}")
        with jax.named_scope("Embedding"):
            return self.weight[self.Vocab.name, ids]

    @module_call
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
