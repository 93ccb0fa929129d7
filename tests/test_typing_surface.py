"""NamedArray's static typing surface: what type checkers see matches what is installed at run time.

The operators (in _core.py) and the methods (in ops/) are installed on NamedArray with setattr,
which type checkers cannot follow; the class declares them in an ``if TYPE_CHECKING:`` block
instead. These tests read that block with `ast` and compare it with the live class, so adding an
operator or method without its declaration (or changing a signature on one side only) fails here,
without needing pyright. tests/typing_sample.py is the pyright check itself (run by hand).
"""

import __future__

import ast
import functools
import inspect
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx  # installs every method
from namedax.core import _named_array as _core
from namedax.core._named_array import NamedArray

# What Python puts in a class's namespace by itself (some only on newer versions).
_IMPLICIT = {
    "__module__", "__qualname__", "__doc__", "__annotations__", "__dict__", "__weakref__",
    "__static_attributes__", "__firstlineno__", "__annotate__", "__annotate_func__", "__annotations_cache__",
}  # fmt: skip


@functools.cache
def _class_node() -> ast.ClassDef:
    tree = ast.parse(pathlib.Path(_core.__file__).read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "NamedArray")


def _is_type_checking(node) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _stub_block() -> ast.If:
    blocks = [n for n in _class_node().body if isinstance(n, ast.If) and _is_type_checking(n)]
    assert len(blocks) == 1, "NamedArray should have one `if TYPE_CHECKING:` block"
    return blocks[0]


def _body_names() -> set[str]:
    """Names the class body binds at run time (the TYPE_CHECKING block binds none)."""
    names = set()
    for node in _class_node().body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.Try) and not _is_type_checking(node):
            raise AssertionError(f"unexpected conditional code in the class body at line {node.lineno}")
    return names


def _installed() -> set[str]:
    """Names set on NamedArray after its class body ran: by setattr in _core.py and in ops/."""
    return set(vars(NamedArray)) - _body_names() - _IMPLICIT


@functools.cache
def _stubs() -> dict:
    """The declared functions, built by running the block's defs (annotations stay strings)."""
    body = _stub_block().body
    defs = [n for n in body if isinstance(n, ast.FunctionDef)]
    assert len(defs) == len(body), "only `def` stubs in the block"
    module = ast.Module(body=list(defs), type_ignores=[])
    code = compile(module, _core.__file__, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    ns: dict = {}
    exec(code, ns)
    return {n.name: ns[n.name] for n in defs}


def test_installed_set_is_not_empty_and_body_parse_is_exact():
    installed = _installed()
    # sanity: the method ops/ installs and an operator _core installs are found, and nothing the
    # class body defines is mistaken for one
    assert {"__add__", "__radd__", "__eq__", "__neg__", "sum", "dot", "take"} <= installed
    assert not installed & {"__getitem__", "__matmul__", "__bool__", "shape", "array", "axes", "__hash__"}
    assert _body_names() <= set(vars(NamedArray))


def test_every_installed_name_is_declared_and_nothing_else():
    declared, installed = set(_stubs()), _installed()
    missing, extra = sorted(installed - declared), sorted(declared - installed)
    assert not missing, f"installed at run time but not declared in NamedArray's TYPE_CHECKING block: {missing}"
    assert not extra, f"declared in NamedArray's TYPE_CHECKING block but not installed at run time: {extra}"


def test_declarations_do_not_shadow_the_class_body():
    assert not set(_stubs()) & _body_names()


def _parameters(fn, drop_self: bool) -> list[inspect.Parameter]:
    ps = list(inspect.signature(fn).parameters.values())
    if drop_self and ps and ps[0].kind in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD):
        ps = ps[1:]  # self, or the function's array argument (x in nx.sum(x, ...)); not dot's *arrays
    return ps


def _same_default(stub, real) -> bool:
    if stub is Ellipsis:  # `= ...` in a stub stands for a private sentinel, never for a plain value
        return real is not inspect.Parameter.empty and type(real) is object
    return stub == real and type(stub) is type(real)


@pytest.mark.parametrize("name", sorted(_stubs()))
def test_declared_signature_matches_the_installed_function(name):
    stub, real = _stubs()[name], vars(NamedArray)[name]
    s_params, r_params = _parameters(stub, True), _parameters(real, True)
    assert [(p.name, p.kind) for p in s_params] == [(p.name, p.kind) for p in r_params], (name, s_params, r_params)
    for s, r in zip(s_params, r_params, strict=True):
        assert _same_default(s.default, r.default), (name, s, r)
    s_sig, r_sig = inspect.signature(stub), inspect.signature(real)
    if any(p.annotation is not p.empty for p in r_params) or r_sig.return_annotation is not r_sig.empty:
        # a public function installed as a method: the same annotations, as written in its module
        assert [p.annotation for p in s_params] == [p.annotation for p in r_params], name
        assert s_sig.return_annotation == r_sig.return_annotation, name
    else:  # an operator: every operand is annotated, and the result is a NamedArray
        assert all(p.annotation == "_Operand" for p in s_params), name
        assert s_sig.return_annotation == "NamedArray", name


_OPERANDS = [
    2,
    2.0,
    True,
    np.float32(2.0),
    np.int32(2),
    np.array(2.0),
    jnp.float32(2.0),
    jnp.array(2.0),
]


@pytest.mark.parametrize("other", _OPERANDS, ids=lambda v: type(v).__name__)
def test_declared_operand_kinds_work_both_ways(other):
    # the operand kinds the stubs accept (NamedArray | jax.typing.ArrayLike, 0-d) give a NamedArray
    x = nx.named(jnp.arange(1.0, 4.0), "a")
    for out in (x + other, other + x, x * other, other - x, x < other, other == x):
        assert type(out) is NamedArray and out.axes == x.axes, (type(other), out)


@pytest.mark.parametrize("name", sorted(n for n in _stubs() if n.startswith("__")))
def test_every_declared_operator_returns_a_named_array(name):
    i = nx.named(jnp.array([1, 2, 3]), "a")
    fn = getattr(i, name)
    n_args = len(_parameters(_stubs()[name], True))
    out = fn(i) if n_args == 1 else fn()
    assert type(out) is NamedArray and out.axes == i.axes


def test_typing_sample_runs():
    # the sample pyright checks (tests/typing_sample.py) is correct code too
    import typing_sample

    out = typing_sample.main()
    assert type(out[0]) is NamedArray and out[0].axes == (nx.Axis("batch", 2), nx.Axis("embed", 3))
