"""Checkpoints by name: a model's arrays as a flat ``{dotted key: array}`` dict, and safetensors files.

A model is a PyTree; its arrays are named by their path through it, written the way PyTorch and
Hugging Face write theirs: ``blocks.3.attn.q_proj.weight`` (field names, sequence indices and dict
keys joined by dots). `state_dict` gives that dict (NamedArrays stay NamedArrays), `from_state_dict`
puts such a dict back into a model of the same structure, and `save` / `load` write and read it as
a safetensors file, each NamedArray's axis names kept in the file's metadata.

Three rules make the files portable:

- **Stacked layers are saved unstacked.** A `Stacked` at ``blocks`` is written as one key per layer,
  ``blocks.0.<...>``, ``blocks.1.<...>`` (no ``stacked`` field, no ``Layers`` axis), the layout of
  per-layer checkpoints elsewhere; loading restacks them. A leaf that the layers share (a NamedArray
  without ``Layers``, a 0-d array) is written once per layer and must come back equal.
- **Only arrays are saved.** Static configuration, activation functions and other non-array leaves
  come from the ``like`` model at load time, as its structure does.
- **Loading checks everything, by name.** A value is matched to the model's leaf by its axis names
  (and transposed to the model's order), else by position; its sizes and dtype must match. Every
  missing key, unexpected key, wrong name, size or dtype is reported with its key, in one error.
  Dtypes are never converted silently: ``cast=True`` converts every value to the model's dtype.

    >>> import jax
    >>> import namedax as nx
    >>> mlp = nx.nn.MLP.init(nx.Axis("embed", 4), nx.Axis("out", 2), 8, 1, key=jax.random.key(0))
    >>> {k: v.shape for k, v in nx.nn.state_dict(mlp).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'layers.0.weight': {'mlp': 8, 'embed': 4}, 'layers.0.bias': {'mlp': 8},
     'layers.1.weight': {'out': 2, 'mlp': 8}, 'layers.1.bias': {'out': 2}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core._axis import Axis
from ..core._named_array import NamedArray, _is_named, _new
from ..core._optional import require
from ._stacked import Stacked

_AXES_KEY = "namedax.axes"  # metadata: JSON {key: [axis names]} of the NamedArray entries
_FORMAT_KEY = "namedax.format"
_FORMAT = "1"

StateDict = dict[str, "NamedArray | jax.Array"]


def _is_node(x: Any) -> bool:
    return _is_named(x) or isinstance(x, Stacked)


def _key_part(k: Any) -> str:
    for attr in ("name", "idx", "key"):  # GetAttrKey, SequenceKey, DictKey / FlattenedIndexKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _join(prefix: str, path: Sequence[Any]) -> str:
    parts = [prefix] if prefix else []
    return ".".join(parts + [_key_part(k) for k in path])


def _is_array(x: Any) -> bool:
    return _is_named(x) or eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)


# ---- model -> dict ---------------------------------------------------------------------------


def state_dict(model: Any) -> StateDict:
    """The model's arrays under dotted keys: ``{"blocks.0.up.weight": NamedArray, ...}``.

    Keys are the leaves' paths (field names, sequence indices and dict keys joined by ``.``); a
    `Stacked` contributes one entry per layer (``blocks.0...``, ``blocks.1...``, see the module
    docstring). NamedArrays stay NamedArrays, plain array leaves stay plain; non-array leaves are
    left out.

    Args:
        model: any PyTree, typically an `equinox.Module` built from `namedax.nn` layers (a
            ``(model, state)`` pair works too).

    Returns:
        A dict from key to NamedArray or jax array, in the model's leaf order.

    Raises:
        ValueError: two leaves give the same key (e.g. a dict key containing a dot).

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> Layers, Embed = nx.Axis("layers", 2), nx.Axis("embed", 3)
        >>> norms = nx.nn.Stacked.init(Layers, nx.nn.LayerNorm)(Embed)
        >>> list(nx.nn.state_dict({"norms": norms}))
        ['norms.0.weight', 'norms.0.bias', 'norms.1.weight', 'norms.1.bias']
    """
    out: StateDict = {}
    _collect(model, "", out)
    return out


def _collect(tree: Any, prefix: str, out: StateDict) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_node)[0]:
        key = _join(prefix, path)
        if isinstance(leaf, Stacked):
            for i in range(leaf.Layers.size):
                _collect(leaf.get_layer(i), _join(key, [i]), out)
        elif _is_named(leaf) or eqx.is_array(leaf):
            if key in out:
                raise ValueError(f"state_dict: two leaves have the key {key!r}; rename a field or dict key")
            out[key] = leaf


# ---- dict -> model ---------------------------------------------------------------------------


def from_state_dict(like: Any, state_dict: Mapping[str, Any], *, cast: bool = False) -> Any:
    """A model of ``like``'s structure with its arrays taken from ``state_dict`` (`state_dict`'s keys).

    Each value is checked against ``like``'s leaf at its key: a NamedArray must have the same axis
    names (in any order: it is transposed to the model's) and sizes; a plain array is taken by
    position and must have the model's shape. The dtype must be the model's unless ``cast``. A
    `Stacked` in ``like`` reads one entry per layer and restacks them. Values go to the device (and
    sharding) of ``like``'s array, so ``like`` may be an abstract model from `equinox.filter_eval_shape`.

    Args:
        like: the model to fill: its structure, static fields and non-array leaves are kept; its
            arrays only give names, shapes, dtypes and placement.
        state_dict: a mapping from key to NamedArray or array (numpy or jax).
        cast: convert every value to the dtype of ``like``'s leaf (e.g. a float32 checkpoint into a
            bfloat16 model); by default a dtype difference is an error.

    Returns:
        The filled model.

    Raises:
        ValueError: keys are missing or unexpected, or a value has other axis names, sizes or dtype;
            the message lists every such key with what differs.

    Examples:
        >>> import jax
        >>> import namedax as nx
        >>> lin = nx.nn.Linear.init(nx.Axis("embed", 3), nx.Axis("out", 2), key=jax.random.key(0))
        >>> sd = nx.nn.state_dict(lin)
        >>> sd["weight"] = sd["weight"].rearrange(("embed", "out"))  # names, not positions, decide
        >>> back = nx.nn.from_state_dict(lin, sd)
        >>> bool((back.weight == lin.weight).all().item())
        True
    """
    return _fill_checked(like, state_dict, cast, "from_state_dict")


def _fill_checked(like: Any, state_dict: Mapping[str, Any], cast: bool, op: str) -> Any:
    problems: list[str] = []
    used: set[str] = set()
    out = _fill(like, "", state_dict, used, problems, cast)
    problems += [f"{k!r}: unexpected key (not in the model)" for k in state_dict if k not in used]
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(
            f"{op}: the checkpoint does not fit the model ({len(problems)} problem(s)):\n  "
            + "\n  ".join(problems[:20])
            + more
        )
    return out


def _fill(like: Any, prefix: str, sd: Mapping[str, Any], used: set, problems: list, cast: bool) -> Any:
    pairs, treedef = jax.tree_util.tree_flatten_with_path(like, is_leaf=_is_node)
    leaves = []
    for path, leaf in pairs:
        key = _join(prefix, path)
        if isinstance(leaf, Stacked):
            template, before = _layer_template(leaf), len(problems)
            layers = [_fill(template, _join(key, [i]), sd, used, problems, cast) for i in range(leaf.Layers.size)]
            if len(problems) == before:  # else some layer holds placeholders: the error is coming anyway
                leaf = eqx.tree_at(lambda s: s.stacked, leaf, _restack(leaf, layers, key, problems))
        elif _is_array(leaf):
            if key not in sd:
                problems.append(f"{key!r}: missing (the model has {_describe(leaf)})")
            else:
                used.add(key)
                leaf = _value_for(key, leaf, sd[key], problems, cast)
        leaves.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _describe(x: Any) -> str:
    if _is_named(x):
        return f"axes {dict(x.shape)} {x.dtype}"
    return f"shape {tuple(np.shape(x))} {x.dtype}"


def _value_for(key: str, like: Any, value: Any, problems: list, cast: bool) -> Any:
    """``value`` as ``like``'s leaf (NamedArray in its axis order, or plain array), or ``like``
    itself with the problem recorded."""
    target = like.array if _is_named(like) else like
    data = value.array if _is_named(value) else value  # numpy stays numpy until the dtype is checked
    if _is_named(value) and _is_named(like):
        if set(value.shape) != set(like.shape):
            problems.append(f"{key!r}: axis names {list(value.shape)}, the model has {list(like.shape)}")
            return like
        wrong = {n: s for n, s in value.shape.items() if like.shape[n] != s}
        if wrong:
            problems.append(f"{key!r}: sizes {wrong}, the model has {dict(like.shape)}")
            return like
        have = [a.name for a in value.axes]
        data = data.transpose([have.index(a.name) for a in like.axes])
    elif tuple(np.shape(data)) != tuple(target.shape):
        hint = " (a plain array is matched by position; name its dims to match by name)" if _is_named(like) else ""
        problems.append(f"{key!r}: shape {tuple(np.shape(data))}, the model has {_describe(like)}{hint}")
        return like
    if data.dtype != target.dtype:
        if not cast:
            problems.append(f"{key!r}: dtype {data.dtype}, the model has {target.dtype} (cast=True converts)")
            return like
        data = data.astype(target.dtype)
    data = _placed(data, target)
    return _new(data, like.axes) if _is_named(like) else data


def _placed(data: Any, target: Any) -> jax.Array:
    """``data`` on the device(s) of ``target`` (a jax array or ShapeDtypeStruct), its sharding kept."""
    sharding = getattr(target, "sharding", None)
    return jax.device_put(data, sharding) if sharding is not None else jnp.asarray(data)


def _per_layer(leaf: Any, name: str) -> bool:
    """Whether a leaf of a stack's ``stacked`` has one slice per layer (a NamedArray holding the
    ``Layers`` axis ``name``, a plain array of rank >= 1), as `Stacked.get_layer` slices them."""
    if _is_named(leaf):
        return any(a.name == name for a in leaf.axes)
    return _is_array(leaf) and np.ndim(leaf) > 0


def _layer_template(stack: Stacked) -> Any:
    """One layer of ``stack`` with abstract arrays: what each layer's entries are checked against."""
    name = stack.Layers.name

    def one(leaf: Any) -> Any:
        if not _per_layer(leaf, name):
            return leaf  # shared by the layers
        if _is_named(leaf):
            axes = tuple(a for a in leaf.axes if a.name != name)
            return _new(jax.ShapeDtypeStruct(tuple(a.size for a in axes), leaf.dtype), axes)
        return jax.ShapeDtypeStruct(tuple(leaf.shape[1:]), leaf.dtype)

    return jax.tree.map(one, stack.stacked, is_leaf=_is_named)


def _restack(stack: Stacked, layers: list, key: str, problems: list) -> Any:
    """The layers' leaves stacked back where ``stack.stacked`` has its ``Layers`` axis."""
    name = stack.Layers.name
    orig, treedef = jax.tree.flatten(stack.stacked, is_leaf=_is_named)
    per = [jax.tree.leaves(layer, is_leaf=_is_named) for layer in layers]
    out = []
    for j, leaf in enumerate(orig):
        got = [p[j] for p in per]
        if _per_layer(leaf, name) and _is_named(leaf):
            pos = [a.name for a in leaf.axes].index(name)
            out.append(_new(_placed(jnp.stack([g.array for g in got], axis=pos), leaf.array), leaf.axes))
        elif _per_layer(leaf, name):
            out.append(_placed(jnp.stack(got), leaf))
        elif _is_array(leaf):  # shared: every layer's copy must agree
            first = np.asarray(got[0].array if _is_named(got[0]) else got[0])
            if not all(np.array_equal(first, np.asarray(g.array if _is_named(g) else g)) for g in got[1:]):
                problems.append(f"{key}.*: a leaf shared by the layers of {stack.Layers} differs between them")
            out.append(got[0])
        else:
            out.append(leaf)
    return treedef.unflatten(out)


# ---- files -----------------------------------------------------------------------------------


def save(path: str | os.PathLike, model: Any, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write the model's arrays (`state_dict`) to a safetensors file, axis names in its metadata.

    The file's metadata holds ``namedax.axes``, a JSON ``{key: [axis names]}`` of the NamedArray
    entries, and ``namedax.format``; any other tool reads the file as plain tensors under dotted keys.
    Every array is brought to the host whole: for sharded models see the "Working with other tools"
    page (orbax). Needs the ``safetensors`` extra.

    Args:
        path: the file to write (overwritten).
        model: the model (any PyTree of arrays and NamedArrays).
        metadata: extra ``str -> str`` entries for the file's metadata.

    Raises:
        TypeError: a leaf holds PRNG keys (save ``jax.random.key_data`` of them instead) or the
            metadata is not ``str -> str``.
        ValueError: a metadata key starts with ``namedax.``.

    Examples:
        >>> import jax, os, tempfile
        >>> import namedax as nx
        >>> lin = nx.nn.Linear.init(nx.Axis("embed", 3), nx.Axis("out", 2), key=jax.random.key(0))
        >>> path = os.path.join(tempfile.mkdtemp(), "lin.safetensors")
        >>> nx.nn.save(path, lin)
        >>> back = nx.nn.load(path, like=lin)
        >>> back.weight.axes == lin.weight.axes and bool((back.weight == lin.weight).all().item())
        True
    """
    st = require("safetensors.numpy", "nn.save", "safetensors")
    meta = dict(metadata or {})
    for k, v in meta.items():
        if not (isinstance(k, str) and isinstance(v, str)):
            raise TypeError(f"nn.save: metadata must map str to str, got {k!r}: {v!r}")
        if k.startswith("namedax."):
            raise ValueError(f"nn.save: metadata key {k!r} is reserved (namedax.* keys are written by namedax)")
    tensors, axes = {}, {}
    for key, value in state_dict(model).items():
        data = value.array if _is_named(value) else value
        if jnp.issubdtype(data.dtype, jax.dtypes.prng_key):
            raise TypeError(f"nn.save: {key!r} holds PRNG keys, which safetensors cannot store; save key_data")
        if isinstance(data, jax.core.Tracer):
            raise TypeError(f"nn.save: {key!r} is traced; save outside jax.jit / vmap")
        if isinstance(data, jax.Array) and not data.is_fully_addressable:
            raise ValueError(
                f"nn.save: {key!r} is spread over several hosts, which one file cannot gather; save sharded "
                "models with orbax (see the 'Working with other tools' page)"
            )
        tensors[key] = np.asarray(data, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        if _is_named(value):
            axes[key] = [a.name for a in value.axes]
    meta[_AXES_KEY] = json.dumps(axes)
    meta[_FORMAT_KEY] = _FORMAT
    st.save_file(tensors, os.fspath(path), metadata=meta)


def load(
    path: str | os.PathLike,
    like: Any,
    *,
    key_map: Mapping[str, str | None] | Callable[[str], str | None] | None = None,
    file_axes: Mapping[str, Sequence[str]] | Callable[[str], Sequence[str] | None] | None = None,
    cast: bool = False,
) -> Any:
    """Read a safetensors file into a model of ``like``'s structure (see `from_state_dict`).

    A file written by `save` carries its axis names, so its arrays are matched to the model by name.
    A file from elsewhere (PyTorch, Hugging Face, ``safetensors.numpy.save_file``) has plain tensors:
    rename its keys to the model's with ``key_map``, and its tensors are then taken by position, so
    their layout must be the model's (a PyTorch ``Linear`` weight is ``(out, in)``, as namedax's
    ``Linear.weight`` is ``(Out, In)``). When a layout differs, ``file_axes`` names the file's dims
    for those keys and the tensor is transposed by name.

    Args:
        path: the safetensors file.
        like: the model to fill (see `from_state_dict`); an abstract model from
            `equinox.filter_eval_shape` avoids initialising parameters only to overwrite them.
        key_map: renames the file's keys to the model's: a dict (keys it lacks keep their name) or a
            function of the file key; ``None`` as a new name drops that tensor.
        file_axes: the file tensor's dim names, in the file's order, by *model* key (a dict, or a
            function returning the names or None); overrides the file's own metadata.
        cast: convert every value to the model's dtype (default: a dtype difference is an error).

    Returns:
        The filled model.

    Raises:
        ValueError: the file does not fit the model (every missing, unexpected or mismatching key
            is listed), two file keys map to one model key, or ``file_axes`` has the wrong length.

    Examples:
        >>> import jax, os, tempfile
        >>> import numpy as np
        >>> import safetensors.numpy
        >>> import namedax as nx
        >>> lin = nx.nn.Linear.init(nx.Axis("embed", 3), nx.Axis("out", 2), key=jax.random.key(0))
        >>> path = os.path.join(tempfile.mkdtemp(), "torch_style.safetensors")
        >>> w = np.arange(6, dtype=np.float32).reshape(2, 3)  # torch's Linear: (out, in)
        >>> safetensors.numpy.save_file({"fc.weight": w, "fc.bias": np.zeros(2, np.float32)}, path)
        >>> back = nx.nn.load(path, like=lin, key_map=lambda k: k.removeprefix("fc."))
        >>> back.weight["out", 1].array
        Array([3., 4., 5.], dtype=float32)
    """
    require("safetensors", "nn.load", "safetensors")
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="numpy") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    names = json.loads(meta.get(_AXES_KEY, "{}"))
    sd: dict[str, Any] = {}
    source: dict[str, str] = {}
    for fkey, data in tensors.items():
        mkey = _lookup(key_map, fkey, fkey)
        if mkey is None:
            continue
        if mkey in sd:
            raise ValueError(f"nn.load: file keys {source[mkey]!r} and {fkey!r} both map to the model key {mkey!r}")
        source[mkey] = fkey
        dims = _lookup(file_axes, mkey, None) or names.get(fkey)
        if dims is not None:
            dims = tuple(dims)
            if len(dims) != data.ndim:
                raise ValueError(f"nn.load: {fkey!r} has shape {data.shape}, but {len(dims)} axis names {dims} given")
            data = NamedArray(data, tuple(Axis(n, k) for n, k in zip(dims, data.shape, strict=True)))
        sd[mkey] = data
    return _fill_checked(like, sd, cast, f"nn.load({os.fspath(path)!r})")


def _lookup(table: Any, key: str, default: Any) -> Any:
    if table is None:
        return default
    if callable(table):
        return table(key)
    return table.get(key, default)
