"""Contractions by name: `dot` and `einsum`.

Both reduce to one positional plan per signature (the operands' axes, the output axis names and the
static options): for two operands a single `jax.lax.dot_general` (axes held by one operand only and
not kept are summed first; a transpose follows only when the output order needs it), for three or
more a `jax.numpy.einsum` with its contraction path computed once when the plan is built. The plan
is a `_kernels.kernel`, so an eager call is one jitted dispatch (no einsum path search per call) and
a traced call has the jaxpr of the hand-written positional version.

    >>> import jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.ones({"batch": 2, "embed": 3})
    >>> w = nx.ones({"embed": 3, "out": 4})
    >>> nx.dot(x, w, axis="embed").shape
    {'batch': 2, 'out': 4}
    >>> nx.einsum("batch embed, embed out -> out batch", x, w).shape
    {'out': 4, 'batch': 2}
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import opt_einsum
from jax.sharding import PartitionSpec

from ..core import _kernels
from ..core._axis import Axis, AxisSelection, AxisSelector, axis_name, to_selectors
from ..core._kernels import is_eager as _is_eager
from ..core._kernels import lookup as _lookup
from ..core._methods import _MISSING
from ..core._named_array import AxisNotFoundError, NamedArray, _is_named, _new, union_of


def _names(axes: Sequence[Axis]) -> tuple[str, ...]:
    return tuple(a.name for a in axes)


def _reduce(a, dims: tuple[int, ...]):
    # keep the dtype: the sum of a contracted axis held by one operand, as jnp.einsum does it
    return jnp.sum(a, axis=dims, dtype=a.dtype) if dims else a


def _make_two(xa, ya, out: tuple[str, ...], precision, pet, sharding=None):
    """The dot_general plan for two operands with axes ``xa``, ``ya`` and output names ``out``
    (``sharding``: a PartitionSpec's entries over ``out``, or None to let JAX infer it)."""
    xn, yn, keep = _names(xa), _names(ya), set(out)
    x_sum = tuple(i for i, n in enumerate(xn) if n not in keep and n not in yn)
    y_sum = tuple(i for i, n in enumerate(yn) if n not in keep and n not in xn)
    xr = [n for i, n in enumerate(xn) if i not in x_sum]
    yr = [n for i, n in enumerate(yn) if i not in y_sum]
    batch = [n for n in out if n in xr and n in yr]  # in output order, so they lead as they should
    contract = [n for n in xr if n in yr and n not in keep]
    result = batch + [n for n in xr if n not in yr] + [n for n in yr if n not in xr]
    dims = (
        (tuple(xr.index(n) for n in contract), tuple(yr.index(n) for n in contract)),
        (tuple(xr.index(n) for n in batch), tuple(yr.index(n) for n in batch)),
    )
    perm = tuple(result.index(n) for n in out)
    transpose = perm != tuple(range(len(perm)))
    kw = {} if sharding is None else {"out_sharding": PartitionSpec(*(sharding[out.index(n)] for n in result))}

    def f(x, y):
        x, y = _reduce(x, x_sum), _reduce(y, y_sum)
        r = jax.lax.dot_general(
            x, y, dims, precision=precision,
            preferred_element_type=jnp.result_type(x, y) if pet is None else pet, **kw,
        )  # fmt: skip
        return jax.lax.transpose(r, perm) if transpose else r

    return f


def _make_many(axes_list, out: tuple[str, ...], precision, pet, sharding=None):
    """A jnp.einsum plan (one operand, or three and more), its contraction path fixed now."""
    letters: dict[str, str] = {}
    for axes in axes_list:
        for a in axes:
            if a.name not in letters:
                if len(letters) == len(string.ascii_letters):
                    raise ValueError(f"einsum/dot: more than {len(letters)} distinct axes in one contraction")
                letters[a.name] = string.ascii_letters[len(letters)]
    spec = ",".join("".join(letters[a.name] for a in axes) for axes in axes_list)
    spec += "->" + "".join(letters[n] for n in out)
    shapes = [tuple(a.size for a in axes) for axes in axes_list]
    # "optimal" is exponential in the number of operands: fine for a few, greedy beyond
    how = "optimal" if len(axes_list) <= 5 else "greedy"
    path: Any = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=how)[0] if len(axes_list) > 1 else False

    kw = {} if sharding is None else {"out_sharding": PartitionSpec(*sharding)}

    def f(*xs):
        return jnp.einsum(spec, *xs, optimize=path, precision=precision, preferred_element_type=pet, **kw)

    return f


def _contraction(axes_list: tuple, out: tuple[str, ...], precision, pet, sharding=None):
    key = ("linalg.contract", axes_list, out, precision, pet, sharding)
    if len(axes_list) == 2:
        return _kernels.kernel(key, lambda: _make_two(*axes_list, out, precision, pet, sharding))
    return _kernels.kernel(key, lambda: _make_many(axes_list, out, precision, pet, sharding))


# Set by namedax.sharding (a layer above): the output's spec under the active axis rules, for a dot
# whose output sharding JAX cannot infer on Explicit mesh axes. None when sharding is not imported.
out_spec_from_rules: Any = None


def _spec_entries(op: str, out: tuple[Axis, ...], out_sharding: Any) -> tuple:
    """``out_sharding`` (a {name: mesh axes} dict or a PartitionSpec over the output's axes) as a
    tuple of spec entries, one per output axis."""
    names = _names(out)
    if isinstance(out_sharding, PartitionSpec):
        entries = tuple(out_sharding) + (None,) * (len(names) - len(out_sharding))
        if len(entries) != len(names):
            raise ValueError(f"{op}: out_sharding {out_sharding} has more entries than the output's axes {out}")
        return entries
    if isinstance(out_sharding, dict):
        extra = [n for n in out_sharding if n not in names]
        if extra:
            raise AxisNotFoundError(f"{op}: out_sharding names {extra}, which are not output axes; outputs: {out}")
        return tuple(out_sharding.get(n) for n in names)
    raise TypeError(
        f"{op}: out_sharding must be a {{axis name: mesh axis}} dict or a PartitionSpec, got {out_sharding!r}"
    )


def _sharded_dot(arrays, axis, precision, pet, out_axes, out_sharding):
    """dot with the output's sharding given (by name or spec), or taken from the axis rules."""
    p = _dot_plan(arrays, axis, precision, pet, out_axes)
    out = p[2]
    if out_sharding is None:
        entries = tuple(out_spec_from_rules(out)) if out_spec_from_rules is not None else (None,) * len(out)
    else:
        entries = _spec_entries("dot", out, out_sharding)
    k = _contraction(tuple(a.axes for a in arrays), _names(out), precision, pet, entries)
    return _new(k(*[a.array for a in arrays]), out)


def _needs_out_sharding(e: Exception) -> bool:
    return type(e).__name__ == "ShardingTypeError" and "out_sharding" in str(e)


def _check_arrays(op: str, arrays) -> tuple:
    if not arrays:
        raise ValueError(f"{op}: no arrays given")
    for i, a in enumerate(arrays):
        if not _is_named(a):
            if type(a) is str or type(a) is Axis:
                raise TypeError(f"{op}: axes go in the `axis=` keyword, got {a!r} as operand {i}")
            raise TypeError(f"{op}: operand {i} must be a NamedArray, got {type(a).__name__}")
    axes_list = tuple(a.axes for a in arrays)
    return axes_list, union_of(op, axes_list)


def _ordered(op: str, axes: tuple[Axis, ...], order) -> tuple[Axis, ...]:
    """``axes`` put in a partial ``order``: names, with at most one ``...`` for the rest."""
    order = tuple(order)
    names = _names(axes)
    listed = [axis_name(s) for s in order if s is not Ellipsis]
    for n in listed:
        if n not in names:
            raise AxisNotFoundError(f"{op}: out_axes names {n!r}, which is not an output axis; outputs: {axes}")
    if len(set(listed)) != len(listed) or order.count(Ellipsis) > 1:
        raise ValueError(f"{op}: out_axes {order} lists an axis twice or has more than one `...`")
    rest = [n for n in names if n not in listed]
    if Ellipsis in order:
        e = order.index(Ellipsis)
        listed = listed[:e] + rest + listed[e:]
    elif rest:
        raise ValueError(f"{op}: out_axes {order} leaves out output axes {rest}; add them or `...`")
    return tuple(axes[names.index(n)] for n in listed)


def _dot_plan(arrays, axis, precision, pet, out_axes):
    axes_list, union = _check_arrays("dot", arrays)
    if axis is _MISSING:
        raise TypeError("dot: pass the axes to contract as `axis=` (None for all, () for none)")
    if axis is None:
        out = ()
    else:
        sels = to_selectors(axis, "dot")
        have = {a.name: a for a in union}
        for s in sels:
            n = axis_name(s)
            if n not in have:
                raise AxisNotFoundError(f"dot: cannot contract {n!r}: no operand has it; the operands have {union}")
            if type(s) is Axis and s != have[n]:
                raise ValueError(f"dot: {s} given, but the operands have {have[n]}")
        names = [axis_name(s) for s in sels]
        if len(set(names)) != len(names):
            raise ValueError(f"dot: an axis is listed twice in axis={axis!r}")
        out = tuple(a for a in union if a.name not in names)
    if out_axes is not None:
        out = _ordered("dot", out, out_axes)
    k = _contraction(axes_list, _names(out), precision, pet)
    return k.jitted, k.plain, out  # called directly by dot: one Python frame fewer than k(...)


def dot(
    *arrays: NamedArray,
    axis: AxisSelection | None = _MISSING,
    precision: Any = None,
    preferred_element_type: Any = None,
    out_axes: Sequence[AxisSelector | Any] | None = None,
    out_sharding: Any = None,
) -> NamedArray:
    """Contract named axes of any number of arrays (haliax's ``dot``).

    The axes in ``axis`` are summed over wherever they occur; every other axis is kept, once: an
    axis several arrays share and that is not contracted is a batch axis. The output holds the union
    of the inputs' axes in order of first appearance, minus the contracted ones (or ``out_axes``'s
    order). Two arrays become one ``dot_general``, more one ``einsum`` with a precomputed path.

    Args:
        *arrays: the operands, NamedArrays.
        axis: the axes to contract: a selector, several, ``None`` for all (a scalar result) or ``()``
            for none (an outer, or batched, product). Keyword only, as in haliax.
        precision: passed to `jax.lax.dot_general`.
        preferred_element_type: the accumulation and result dtype (default: the inputs' promoted dtype).
        out_axes: an order for the result's axes; ``...`` (once) stands for the ones not listed.
        out_sharding: the result's sharding on the current mesh (Explicit axes): a
            ``{axis name: mesh axis}`` dict (axes left out are replicated) or a `PartitionSpec` over
            the output's axes. When omitted and JAX cannot infer it (a contraction over an axis
            sharded in both operands), the active `namedax.sharding` rules supply it from the
            output's names, so a tensor-parallel layer runs unchanged.

    Returns:
        A NamedArray over the kept axes.

    Raises:
        ValueError: an axis has two sizes across the arrays, an axis is listed twice, or
            ``out_axes`` does not fit the output.
        AxisNotFoundError: a contracted axis is in no array (the message lists those present).
        TypeError: ``axis`` is missing or an operand is not a NamedArray.

    Examples:
        >>> import namedax as nx
        >>> x = nx.arange(nx.Axis("embed", 3)) * nx.ones({"batch": 2})
        >>> w = nx.ones({"embed": 3, "out": 2})
        >>> nx.dot(x, w, axis="embed").array
        Array([[3., 3.],
               [3., 3.]], dtype=float32)
        >>> nx.dot(x, x, axis=None).array  # everything contracted: 2 * (0 + 1 + 4)
        Array(10., dtype=float32)
        >>> x.dot(w, axis=()).axes  # nothing contracted: embed is shared, so batched
        (Axis('embed', 3), Axis('batch', 2), Axis('out', 2))
    """
    opts = (axis, precision, preferred_element_type, out_axes)
    if out_sharding is not None:
        return _sharded_dot(arrays, *opts, out_sharding)
    if len(arrays) == 2:  # the hot path: every step here costs a measurable part of the budget
        x, y = arrays
        try:
            key = (*opts, x.axes, y.axes)
            p = _lookup(key) or _kernels.cached(key, _dot_plan, arrays, *opts)
        except (TypeError, AttributeError):  # a list or {name: size} selection, or bad input
            p = _dot_plan_slow(arrays, *opts)
        try:
            return _new(p[0](x.array, y.array) if _is_eager() else p[1](x.array, y.array), p[2])
        except Exception as e:  # Explicit mesh axes: JAX asks where the output goes
            if not _needs_out_sharding(e):
                raise
            return _sharded_dot(arrays, *opts, None)
    try:
        p = _kernels.cached((*opts, *[a.axes for a in arrays]), _dot_plan, arrays, *opts)
    except (TypeError, AttributeError):
        p = _dot_plan_slow(arrays, *opts)
    try:
        return _new((p[0] if _is_eager() else p[1])(*[a.array for a in arrays]), p[2])
    except Exception as e:
        if not _needs_out_sharding(e):
            raise
        return _sharded_dot(arrays, *opts, None)


def _dot_plan_slow(arrays, axis, precision, pet, out_axes):
    _check_arrays("dot", arrays)  # raises for an operand that is not a NamedArray
    axis = tuple(axis) if type(axis) is list else axis
    out_axes = tuple(out_axes) if type(out_axes) is list else out_axes
    key = (axis, precision, pet, out_axes, *[a.axes for a in arrays])
    if _kernels.hashable(key):
        return _kernels.cached(key, _dot_plan, arrays, axis, precision, pet, out_axes)
    return _dot_plan(arrays, axis, precision, pet, out_axes)  # a {name: size} selection: planned every time


# ---------------------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\.\.\.)|(->)|([,{}()])|([A-Za-z_]\w*)|'([^']+)'|\"([^\"]+)\"|(\S))")


def _tokens(eq: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: kind is one of ``. > , { } ( ) n`` (n: a name) or ``?`` (bad)."""
    out = []
    pos = 0
    while pos < len(eq):
        m = _TOKEN.match(eq, pos)
        if m is None:  # only trailing whitespace left
            break
        pos = m.end()
        ell, arrow, punct, ident, q1, q2, bad = m.groups()
        if ell:
            out.append((".", "..."))
        elif arrow:
            out.append((">", "->"))
        elif punct:
            out.append((punct, punct))
        elif ident or q1 or q2:
            out.append(("n", ident or q1 or q2))
        else:
            out.append(("?", bad))
    return out


def _parse(eq: str):
    """``(terms, rhs)``: each term ``(braced, items)``, items names or ``...``; terms == [] when the
    left-hand side is empty."""

    def fail(msg):
        raise ValueError(f"einsum: {msg} in {eq!r}")

    toks = _tokens(eq)
    if (">", "->") not in toks:
        fail("the equation needs `->` (an empty right-hand side gives a scalar)")
    terms: list[tuple[bool, list]] = []
    items: list = []
    braced = closed = False
    i = 0
    for i, (kind, text) in enumerate(toks):
        if kind == ">":
            break
        if kind in "()":
            fail("parenthesised axis groups are not supported")
        if kind == "?":
            fail(f"unexpected character {text!r}")
        if closed and kind not in ",":
            fail("nothing may follow `}` but `->`")
        if kind == "{":
            if items or braced:
                fail("`{` must open a term")
            braced = True
        elif kind == "}":
            if not braced:
                fail("`}` without `{`")
            closed = True
        elif kind == ",":
            if braced:
                fail("a `{...}` term stands for all the arrays: it cannot be one of several")
            terms.append((False, items))
            items = []
        else:
            items.append(Ellipsis if kind == "." else text)
    if braced and not closed:
        fail("`{` is not closed")
    if items or braced or terms:
        terms.append((braced, items))
    rhs = []
    for kind, text in toks[i + 1 :]:
        if kind == "n" or kind == ".":
            rhs.append(Ellipsis if kind == "." else text)
        else:
            fail(f"unexpected {text!r} on the right-hand side")
    if rhs.count(Ellipsis) > 1 or any(t[1].count(Ellipsis) > 1 for t in terms):
        fail("`...` may appear once per term")
    named = [n for n in rhs if n is not Ellipsis]
    if len(set(named)) != len(named):
        fail("an axis appears twice on the right-hand side")
    return terms, rhs


class _Aliases:
    """Names in the equation that stand for axes given as keyword arguments."""

    def __init__(self, eq: str, aliases: dict, union: tuple[Axis, ...]):
        self.eq, self.aliases, self.used = eq, aliases, set()
        have = {a.name: a for a in union}
        for k, v in aliases.items():
            if type(v) is not Axis and type(v) is not str:
                raise TypeError(f"einsum: alias {k}={v!r} must be an Axis or an axis name")
            if type(v) is Axis and v.name in have and have[v.name] != v:
                raise ValueError(f"einsum: alias {k}={v} but the arrays have {have[v.name]}")

    def name(self, token: str) -> str:
        if token in self.aliases:
            self.used.add(token)
            return axis_name(self.aliases[token])
        return token

    def check_used(self):
        unused = sorted(set(self.aliases) - self.used)
        if unused:
            raise ValueError(f"einsum: aliases {unused} are not used in {self.eq!r}")


def _by_name(eq, terms, rhs, al: _Aliases, union) -> tuple[str, ...]:
    """Output names of the ``{...} -> ...`` and ``-> ...`` forms: names are axis names."""
    names = _names(union)

    def resolve(items, side):
        out = [Ellipsis if t is Ellipsis else al.name(t) for t in items]
        for n in out:
            if n is not Ellipsis and n not in names:
                raise AxisNotFoundError(f"einsum: {n!r} ({side} of {eq!r}) is in no array; the arrays have {union}")
        listed = [n for n in out if n is not ...]
        if len(set(listed)) != len(listed):
            raise ValueError(f"einsum: an axis is named twice on the {side} of {eq!r}")
        return out, listed

    lhs_items = terms[0][1] if terms else [Ellipsis]  # "-> out" contracts all the rest
    lhs, left = resolve(lhs_items, "left-hand side")
    out, right = resolve(rhs, "right-hand side")
    if Ellipsis in lhs and Ellipsis not in out:
        kept = set(right)
    else:
        kept = set(names) - (set(left) - set(right))
    rest = [n for n in names if n in kept and n not in right]
    if Ellipsis in out:
        e = out.index(Ellipsis)
        return tuple(right[:e] + rest + right[e:])
    return tuple(rest + right)


def _positional(eq, terms, rhs, al: _Aliases, arrays) -> tuple[str, ...]:
    """Output names of the ``a b, b c -> a c`` form: each term labels its array's axes in order."""
    if len(terms) != len(arrays):
        raise ValueError(f"einsum: {eq!r} has {len(terms)} terms for {len(arrays)} arrays")
    bound: dict[str, Axis] = {}  # label -> axis
    label_of: dict[str, str] = {}  # axis name -> label
    in_ellipsis: list[str] = []
    for k, ((_, items), arr) in enumerate(zip(terms, arrays, strict=True)):
        axes, n_ell = arr.axes, items.count(Ellipsis)
        if len(items) - n_ell > len(axes) or (not n_ell and len(items) != len(axes)):
            raise ValueError(f"einsum: term {k} of {eq!r} labels {len(items)} axes, array {k} has {axes}")
        e = items.index(Ellipsis) if n_ell else len(items)
        after = items[e + 1 :]
        pairs = list(zip(items[:e], axes[:e])) + list(zip(after, axes[len(axes) - len(after) :]))
        in_ellipsis += [a.name for a in axes[e : len(axes) - len(after)] if a.name not in in_ellipsis]
        for label, ax in pairs:
            if label in al.aliases and al.name(label) != ax.name:
                raise ValueError(
                    f"einsum: {label!r} is an alias of {al.aliases[label]!r}, but labels {ax} in array {k}"
                )
            if bound.get(label, ax) != ax:
                raise ValueError(f"einsum: {label!r} labels both {bound[label]} and {ax} (array {k}) in {eq!r}")
            if label_of.get(ax.name, label) != label:
                raise ValueError(f"einsum: axis {ax.name!r} is labelled both {label_of[ax.name]!r} and {label!r}")
            bound[label], label_of[ax.name] = ax, label
    out = []
    for t in rhs:
        if t is Ellipsis:
            out.append(t)
        elif t not in bound:
            raise ValueError(f"einsum: {t!r} on the right-hand side labels no axis on the left of {eq!r}")
        else:
            out.append(bound[t].name)
    if Ellipsis in out:
        e = out.index(Ellipsis)
        out[e : e + 1] = [n for n in in_ellipsis if n not in label_of]
    return tuple(out)


def _einsum_plan(equation, arrays, aliases, precision, pet):
    axes_list, union = _check_arrays("einsum", arrays)
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    terms, rhs = _parse(equation)
    al = _Aliases(equation, aliases, union)
    if not terms or (len(terms) == 1 and terms[0][0]):
        out = _by_name(equation, terms, rhs, al, union)
    else:
        out = _positional(equation, terms, rhs, al, arrays)
    al.check_used()
    have = {a.name: a for a in union}
    return _contraction(axes_list, out, precision, pet), tuple(have[n] for n in out)


def einsum(
    equation: str,
    *arrays: NamedArray,
    precision: Any = None,
    preferred_element_type: Any = None,
    **axis_aliases: AxisSelector,
) -> NamedArray:
    """Einstein summation over axis names, with haliax's three forms of equation.

    - Positional, one term per array: ``"b e, e o -> b o"``. Each term labels its array's axes in
      order (the labels need not be the axis names); ``...`` (once per term) stands for the axes not
      labelled, which keep their names. The output has the labelled axes' real names; ``...`` on the
      right keeps the ellipsis axes, without it they are summed. A label is one axis throughout.
    - By name, one braced term for all arrays: ``"{embed} -> batch"`` contracts the axes named
      on the left and not on the right, keeps the rest, and puts the right-hand ones last (or, with
      ``...`` on the right, where it says). ``"{...} -> batch out"`` keeps exactly the right-hand axes.
    - Output only: ``"-> batch out"`` keeps exactly those axes (``...`` on the right for the others)
      and contracts the rest.

    Names may be ``'quoted'``. Keyword arguments give aliases: ``einsum("{x} -> ", a, b, x=Embed)``.

    Args:
        equation: the equation (``->`` is required; an empty right-hand side gives a scalar).
        *arrays: the operands.
        precision: passed to `jax.lax.dot_general`.
        preferred_element_type: the accumulation and result dtype.
        **axis_aliases: names in the equation standing for an `Axis` (size checked) or an axis name.

    Returns:
        A NamedArray over the output axes, in the equation's order.

    Raises:
        ValueError: a malformed equation, a term that does not fit its array, a label bound to two
            axes, an axis with two sizes, an unused alias.
        AxisNotFoundError: a name (by-name forms) that no array has.
        TypeError: an operand is not a NamedArray.

    Examples:
        >>> import namedax as nx
        >>> a = nx.ones({"h": 2, "w": 3, "d": 4})
        >>> b = nx.ones({"d": 4, "w": 3})
        >>> nx.einsum("i j k, k j -> j i", a, b).shape
        {'w': 3, 'h': 2}
        >>> nx.einsum("{d} -> ", a, b).shape
        {'h': 2, 'w': 3}
        >>> nx.einsum("-> h", a, b).array
        Array([12., 12.], dtype=float32)
        >>> nx.einsum("... d, d w -> ... w", a, b).shape
        {'h': 2, 'w': 3}
    """
    args = (equation, arrays, axis_aliases, precision, preferred_element_type)
    try:
        key = (equation, precision, preferred_element_type, tuple(axis_aliases.items()), *[a.axes for a in arrays])
        hash(key)
    except (AttributeError, TypeError):  # bad input: planning raises the error
        k, out = _einsum_plan(*args)
    else:
        k, out = _kernels.cached(key, _einsum_plan, *args)
    return _new(k(*[a.array for a in arrays]), out)
