"""haliax's einops-style ``rearrange`` strings, run as namedax calls.

A string is parsed into captures (a name, ``...``, or a group ``(name: a b)``), then executed in
three namedax steps: `namedax.unflatten_axis` for each group on the left (a split),
`namedax.rearrange` into the right side's order (haliax's partial order for ``...``), and
`namedax.flatten_axes` for each group on the right (a merge). Ordered left sides (no braces) bind
names to axes by position and keep the axes' own names; ``{...}`` left sides bind by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...core._axis import Axis
from ...core._named_array import NamedArray
from ...core._named_array import rearrange as _rearrange
from ...ops import _shape

_TOKEN = re.compile(r"\s*(\.\.\.|->|[{}():]|[A-Za-z_][A-Za-z0-9_]*|'[^']*'|\"[^\"]*\")")


def _error(expr: str, msg: str) -> ValueError:
    return ValueError(f"rearrange: {msg} in {expr!r}")


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expr.rstrip()):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise _error(expr, f"unexpected character {expr[pos:].strip()[:1]!r} at position {pos}")
        tok = m.group(1)
        out.append(tok[1:-1] if tok[0] in "'\"" else tok)
        pos = m.end()
    return out


def _side(expr: str, toks: list[str]) -> tuple[list[Any], bool]:
    """Captures of one side: a name (str), ``...``, or ``(label or None, [parts])``; and whether unordered."""
    unordered = bool(toks) and toks[0] == "{"
    if unordered:
        if toks[-1] != "}":
            raise _error(expr, "a `{` without its `}`")
        toks = toks[1:-1]
    caps: list[Any] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "(":
            j = toks.index(")", i) if ")" in toks[i:] else -1
            if j < 0:
                raise _error(expr, "a `(` without its `)`")
            inner = toks[i + 1 : j]
            label = None
            if len(inner) >= 2 and inner[1] == ":":
                label, inner = inner[0], inner[2:]
            if not inner or any(not _is_name(p) for p in inner):
                raise _error(expr, f"a group must list axis names, got ({' '.join(toks[i + 1 : j])})")
            caps.append((label, inner))
            i = j + 1
        elif t == "..." or _is_name(t):
            caps.append(Ellipsis if t == "..." else t)
            i += 1
        else:
            raise _error(expr, f"unexpected {t!r}")
    return caps, unordered


def _is_name(t: str) -> bool:
    return t not in ("(", ")", "{", "}", ":", "->", "...")


def _new_axis_name(label: str, bindings: Mapping[str, Any]) -> str:
    b = bindings.get(label)
    return b.name if type(b) is Axis else b if isinstance(b, str) else label


def rearrange_string(x: NamedArray, expr: str, bindings: Mapping[str, Any]) -> NamedArray:
    """`rearrange` with a string: see `namedax.compat.haliax.rearrange`."""
    from ._core import rearrange_for_partial_order

    toks = _tokens(expr)
    if toks.count("->") != 1:
        raise _error(expr, "expected one `->`")
    arrow = toks.index("->")
    lhs, unordered = _side(expr, toks[:arrow])
    if lhs.count(Ellipsis) > 1 and not unordered:
        raise _error(expr, "an ordered left side may hold `...` once")
    rhs, rhs_unordered = _side(expr, toks[arrow + 1 :])
    if rhs_unordered:
        raise _error(expr, "the right side cannot be unordered (`{...}`)")
    names = [a.name for a in x.axes]
    # 1. bind the left side's captures to axes of x
    if unordered:
        bound = [(c, c if isinstance(c, str) else c[0]) for c in lhs if c is not Ellipsis]
        for c, ref in bound:
            if ref is None:
                raise _error(expr, "a group on an unordered left side needs the axis it splits: (name: a b)")
        pairs = [(c, _new_axis_name(ref, bindings)) for c, ref in bound]
    else:
        e = lhs.index(Ellipsis) if Ellipsis in lhs else len(lhs)
        left, right = lhs[:e], lhs[e + 1 :]
        if len(left) + len(right) > len(names) or (Ellipsis not in lhs and len(lhs) != len(names)):
            raise _error(expr, f"the left side has {len(left) + len(right)} axes, the array {x.axes}")
        pairs = list(zip(left, names, strict=False)) + list(zip(right, names[len(names) - len(right) :], strict=True))
    aliases: dict[str, str] = {}
    for c, actual in pairs:
        if actual not in names:
            raise _error(expr, f"no axis {actual!r} in {x.axes}")
        if isinstance(c, str):
            aliases[c] = actual
            continue
        # 2. a split: sizes from the bindings, one may be inferred
        ax = next(a for a in x.axes if a.name == actual)  # x changes with each split: look up by name
        parts = [(_new_axis_name(p, bindings), bindings.get(p)) for p in c[1]]
        sizes = [b.size if type(b) is Axis else b if isinstance(b, int) else None for _, b in parts]
        known = 1
        for s in sizes:
            known *= s if s is not None else 1
        if sizes.count(None) > 1 or known == 0 or ax.size % known:
            raise _error(expr, f"cannot split {ax} into {c[1]} with sizes {dict(bindings)}")
        sizes = [s if s is not None else ax.size // known for s in sizes]
        x = _shape.unflatten_axis(x, actual, tuple(Axis(n, s) for (n, _), s in zip(parts, sizes, strict=True)))
        aliases.update({p: n for p, (n, _) in zip(c[1], parts, strict=True)})
    # 3. the right side's order, then its merges
    present = {a.name for a in x.axes}

    def deal(n: str) -> str:
        actual = aliases.get(n)
        if actual is None or actual not in present:
            raise _error(expr, f"{n!r} is not bound on the left side")
        return actual

    order: list[Any] = []
    merges: list[tuple[list[str], str]] = []
    for c in rhs:
        if c is Ellipsis:
            order.append(Ellipsis)
        elif isinstance(c, str):
            order.append(deal(c))
        else:
            if c[0] is None:
                raise _error(expr, "a group on the right side needs a name for the merged axis: (name: a b)")
            parts = [deal(p) for p in c[1]]
            order.extend(parts)
            merges.append((parts, _new_axis_name(c[0], bindings)))
    listed = [o for o in order if o is not Ellipsis]
    if len(set(listed)) != len(listed):
        raise _error(expr, "an axis is used twice on the right side")
    if Ellipsis not in order and len(listed) != x.ndim:
        unused = sorted(present - set(listed))
        raise _error(expr, f"axes {unused} are not on the right side; add them or `...`")
    x = _rearrange(x, rearrange_for_partial_order(order, x.axes))
    for parts, new in merges:
        x = _shape.flatten_axes(x, tuple(parts), new)
    return x
