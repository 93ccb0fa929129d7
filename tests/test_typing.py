"""namedax.typing: named-axis annotations checked by isinstance and by jaxtyping + beartype."""
# ruff: noqa: F722  (jaxtyping-style annotations: axis names in strings; single names get a leading space)

from __future__ import annotations

import importlib
import importlib.metadata
import pickle
import re
import subprocess
import sys
import textwrap

import beartype
import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jaxtyping import Array, Float, PyTree, TypeCheckError, jaxtyped

import namedax as nx
from namedax.typing import Float as NFloat
from namedax.typing import Int as NInt
from namedax.typing import Named, bf16, bool_, f16, f32, f64, i32, i64, u8

typed = jaxtyped(typechecker=beartype.beartype)


def chain(e: BaseException | None) -> str:
    """The messages of an exception and its causes: what a user sees in the traceback."""
    out = []
    while e is not None:
        out.append(str(e))
        e = e.__cause__ or e.__context__
    return "\n".join(out)


def raises_check(pattern: str):
    """pytest.raises(TypeCheckError) whose message chain matches ``pattern``."""

    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(TypeCheckError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            text = chain(self.info.value)
            assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"
            return suppressed

    return _Ctx()


def contract(x, axis):
    """Sum over one axis with core ops only (tests here do not depend on namedax's reductions)."""
    rest = tuple(a for a in x.axes if a.name != axis)
    return nx.NamedArray(jnp.sum(x.rearrange((axis, *(a.name for a in rest))).array, axis=0), rest)


def arr(dtype="float32", **sizes):
    """A NamedArray over numpy zeros (numpy keeps float64/int64 without jax's x64 mode)."""
    return nx.NamedArray(np.zeros(tuple(sizes.values()), dtype), sizes)


# ---------------------------------------------------------------- the private jaxtyping API we use


def test_jaxtyping_private_api():
    """namedax.typing relies on jaxtyping._storage; if this fails, jaxtyping moved it: update
    namedax/typing.py and the jaxtyping pin in pyproject together."""
    major, minor, patch = (int(p) for p in importlib.metadata.version("jaxtyping").split(".")[:3])
    assert (0, 3, 11) <= (major, minor, patch) < (0, 4, 0)
    from jaxtyping._storage import get_shape_memo

    with jaxtyped("context"):
        memo = get_shape_memo()
        assert isinstance(memo, tuple) and len(memo) == 4 and isinstance(memo[0], dict)
        # jaxtyping's own dimensions land in memo[0] as name -> int, where namedax reads them
        assert isinstance(jnp.zeros((3, 5)), Float[Array, "batch embed"])
        assert get_shape_memo()[0] == {"batch": 3, "embed": 5}
        # and namedax's bindings are read back by jaxtyping
        assert isinstance(arr(rows=7), f32["rows"])
        assert not isinstance(jnp.zeros(6), Float[Array, "rows"])
        assert isinstance(jnp.zeros(7), Float[Array, "rows"])


# ---------------------------------------------------------------- names as a set, '...', sizes

NAMES = ("a", "b", "c", "d")


@given(
    have=st.lists(st.sampled_from(NAMES), unique=True, max_size=4),
    want=st.lists(st.sampled_from(NAMES), unique=True, max_size=4),
    sizes=st.lists(st.sampled_from([1, 2, 3]), min_size=4, max_size=4),
    dots=st.sampled_from([None, 0, -1]),
)
def test_names_match_as_a_set(have, want, sizes, dots):
    x = arr(**{n: s for n, s in zip(have, sizes)})
    tokens = list(want)
    if dots is not None:
        tokens.insert(len(tokens) if dots == -1 else 0, "...")
    expected = set(want) <= set(have) if dots is not None else set(want) == set(have)
    assert isinstance(x, f32[" ".join(tokens)]) is expected
    assert isinstance(x, Named[tuple(tokens)]) is expected  # tuple form, same rule
    # any permutation of the annotation means the same
    assert isinstance(x, f32[" ".join(reversed(tokens))]) is expected


def test_any_axis_order_passes_under_jaxtyped():
    @typed
    def f(x: f32["batch embed"], y: f32["embed batch"]) -> f32[" batch"]:
        return contract(x * y, "embed")

    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    y = nx.named(jnp.arange(6.0).reshape(3, 2), ("embed", "batch"))
    ref = (np.arange(6.0).reshape(2, 3) * np.arange(6.0).reshape(3, 2).T).sum(1)
    np.testing.assert_allclose(np.asarray(f(x, y).array), ref)


def test_missing_and_extra_axes_raise_naming_the_axis():
    @typed
    def f(x: f32["batch embed"]) -> None:
        pass

    f(arr(embed=3, batch=2))
    with raises_check(r"missing axis 'embed'"):
        f(arr(batch=2))
    with raises_check(r"unexpected axis 'head'.*add '\.\.\.'"):
        f(arr(batch=2, head=4, embed=3))
    with raises_check(r"parameter 'x'"):
        f(arr(batch=2))


def test_ellipsis_allows_other_axes_but_still_requires_the_named_ones():
    @typed
    def f(x: f32["batch ..."], y: Named[..., " batch"]) -> None:
        pass

    f(arr(batch=2), arr(batch=2))
    f(arr(head=4, batch=2, embed=3), arr("int32", batch=2, seq=5))
    with raises_check(r"missing axis 'batch'"):
        f(arr(embed=3), arr(batch=2))


def test_fixed_sizes_from_the_spec_or_from_axes():
    Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
    assert isinstance(arr(batch=2, embed=3), f32["batch embed=3"])
    assert not isinstance(arr(batch=2, embed=4), f32["batch embed=3"])
    assert isinstance(arr(batch=2, embed=3), f32[Batch, Embed])
    assert isinstance(arr(batch=2, embed=3, x=1), f32[Embed, ...])
    assert not isinstance(arr(batch=5, embed=3), f32[Batch, Embed])

    @typed
    def f(x: f32["batch embed=3"]) -> None:
        pass

    with raises_check(r"axis 'embed' has size 4, but the annotation requires 3"):
        f(arr(batch=2, embed=4))


# ---------------------------------------------------------------- dtypes

DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "int8", "bool", "complex64"]
# The reference: which dtype names each annotation accepts, written out by hand.
ACCEPTS = {
    f32: {"float32"}, f16: {"float16"}, bf16: {"bfloat16"}, f64: {"float64"},
    i32: {"int32"}, i64: {"int64"}, u8: {"uint8"}, bool_: {"bool"},
    NFloat: {"float32", "float16", "bfloat16", "float64"},
    NInt: {"int32", "int64", "uint8", "int8"},
    Named: set(DTYPES),
}


@pytest.mark.parametrize("ann", list(ACCEPTS), ids=lambda a: a.__name__)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_classes(ann, dtype):
    x = nx.NamedArray(np.zeros((2,), jnp.dtype(dtype)), {"batch": 2})
    expected = dtype in ACCEPTS[ann]
    assert isinstance(x, ann["batch"]) is expected
    assert isinstance(x, ann) is expected  # bare kind: any axes


def test_wrong_dtype_raises_naming_the_dtypes():
    @typed
    def f(x: f32[" batch"], n: NInt[" batch"]) -> None:
        pass

    f(arr(batch=2), arr("uint8", batch=2))
    with raises_check(r"f32\['batch'\] expects dtype float32, got .*float64"):
        f(arr("float64", batch=2), arr("int32", batch=2))
    with raises_check(r"expects any integer dtype.*float32"):
        f(arr(batch=2), arr(batch=2))


def test_jax_dtypes_and_tracers():
    x = nx.zeros({"a": 2}, dtype=jnp.bfloat16)
    assert isinstance(x, bf16["a"]) and isinstance(x, NFloat["a"]) and not isinstance(x, f32["a"])
    assert isinstance(nx.zeros({"a": 2}) > 0, bool_["a"])
    seen = []
    jax.jit(lambda v: seen.append(isinstance(v, f32["a"]) and not isinstance(v, i32["a"])) or v)(nx.zeros({"a": 2}))
    assert seen == [True]


# ---------------------------------------------------------------- one size per name per call


def test_size_shared_across_arguments():
    @typed
    def f(x: f32["batch embed"], y: f32[" batch"]) -> None:
        pass

    f(arr(batch=2, embed=3), arr(batch=2))
    with raises_check(r"parameter 'y'(.|\n)*axis 'batch' has size 3, but 'batch' has size 2 elsewhere in this call"):
        f(arr(batch=2, embed=3), arr(batch=3))


def test_size_shared_between_arguments_and_return_value():
    @typed
    def f(x: f32["batch embed"]) -> f32["batch out"]:
        return nx.zeros({"batch": 4, "out": 1})

    with raises_check(r"return value(.|\n)*axis 'batch' has size 4, but 'batch' has size 2"):
        f(arr(batch=2, embed=3))
    with raises_check(r"return value(.|\n)*unexpected axis 'extra'"):
        _returns(arr(batch=2, embed=3), nx.zeros({"batch": 2, "out": 1, "extra": 2}))


@typed
def _returns(x: f32["batch embed"], out) -> f32["batch out"]:
    return out


def test_separate_calls_do_not_share_sizes():
    @typed
    def f(x: f32["batch embed"]) -> f32[" batch"]:
        return contract(x, "embed")

    a = nx.named(jnp.ones((2, 3)), ("batch", "embed"))
    b = nx.named(jnp.ones((5, 4)), ("batch", "embed"))
    np.testing.assert_allclose(np.asarray(f(a).array), np.full(2, 3.0))
    np.testing.assert_allclose(np.asarray(f(b).array), np.full(5, 4.0))


def test_sizes_agree_with_jaxtyping_positional_dimensions():
    @typed
    def f(x: f32["batch embed"], mask: Float[Array, " batch"]) -> Float[Array, " embed"]:
        return contract(x * nx.named(mask, "batch"), "batch").array

    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    np.testing.assert_allclose(np.asarray(f(x, jnp.ones(2))), np.arange(6.0).reshape(2, 3).sum(0))
    with raises_check(r"parameter 'mask'"):
        f(x, jnp.ones(3))

    @typed
    def g(mask: Float[Array, " batch"], x: f32["batch ..."]) -> None:
        pass

    with raises_check(r"axis 'batch' has size 2, but 'batch' has size 3 elsewhere"):
        g(jnp.ones(3), arr(batch=2, embed=1))


def test_isinstance_outside_jaxtyped_checks_each_array_alone():
    ann = f32["batch"]
    assert isinstance(arr(batch=2), ann) and isinstance(arr(batch=3), ann)
    # inside jaxtyping's context manager sizes are shared, as for jaxtyping's own annotations
    with jaxtyped("context"):
        assert isinstance(arr(batch=2), ann)
        assert not isinstance(arr(batch=3), ann)
        assert isinstance(arr(batch=2, x=1), f32["batch x"])
    assert isinstance(arr(batch=3), ann)


def test_failed_check_binds_nothing():
    with jaxtyped("context"):
        assert not isinstance(arr(batch=3, embed=1), f32["batch"])  # fails on 'embed' ...
        assert not isinstance(arr("int32", batch=3), f32["batch"])  # ... or on the dtype
        assert isinstance(arr(batch=2), f32["batch"])  # so 'batch' is still free


def test_checks_at_trace_time_under_jit():
    @jax.jit
    @typed
    def f(x: f32["batch embed"], y: f32[" embed"]) -> f32[" batch"]:
        return contract(x * y, "embed")

    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    y = nx.named(jnp.array([1.0, 2.0, 3.0]), "embed")
    np.testing.assert_allclose(np.asarray(f(x, y).array), np.arange(6.0).reshape(2, 3) @ np.array([1.0, 2.0, 3.0]))
    with raises_check(r"axis 'embed' has size 4, but 'embed' has size 3"):
        f(x, nx.named(jnp.ones(4), "embed"))
    with raises_check(r"expects dtype float32"):
        f(x, y.astype(jnp.int32))


def test_inside_named_vmap():
    @typed
    def row(r: f32[" embed"]) -> f32[""]:
        return contract(r, "embed")

    if not hasattr(nx, "vmap"):
        pytest.skip("namedax.vmap is not available")
    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    np.testing.assert_allclose(np.asarray(nx.vmap(row, "batch")(x).array), np.arange(6.0).reshape(2, 3).sum(1))


def test_pytree_of_named_arrays():
    @typed
    def f(params: PyTree[f32["out ..."]]) -> None:
        pass

    f({"w": arr(out=2, inp=3), "b": arr(out=2)})
    # jaxtyping's PyTree reports the whole tree (not the leaf's reason), with the bound sizes
    with raises_check(r"Expected type: .*PyTree\[namedax.typing.f32\['out \.\.\.'\]\](.|\n)*out=2"):
        f({"b": arr(out=2), "w": arr(out=3, inp=3)})


def test_equinox_module_fields():
    @typed
    class Linear(eqx.Module):
        w: f32["out in"]
        b: f32[" out"]

    Linear(arr(out=2, **{"in": 3}), arr(out=2))
    with raises_check(r"axis 'out' has size 3, but 'out' has size 2"):
        Linear(arr(out=2, **{"in": 3}), arr(out=3))


def test_optional_annotation():
    @typed
    def f(x: f32[" batch"] | None = None) -> None:
        pass

    f()
    f(arr(batch=2))
    # beartype reports a failed union member by its name, not by its __instancecheck_str__
    with raises_check(r"violates type hint namedax.typing.f32\['batch'\] \| None"):
        f(arr(embed=2))


# ---------------------------------------------------------------- what is not a NamedArray


@pytest.mark.parametrize("value", [jnp.zeros(2), np.zeros(2), 1.0, None, "batch"], ids=repr)
def test_non_named_arrays_are_rejected(value):
    assert not isinstance(value, f32["batch"]) and not isinstance(value, Named)

    @typed
    def f(x: Named[" batch"]) -> None:
        pass

    with raises_check(r"expected a NamedArray for Named\['batch'\], got " + type(value).__name__):
        f(value)


# ---------------------------------------------------------------- jaxtyping's import hook and pytest plugin

MODULE = """
from namedax.typing import f32
import namedax as nx

def mean_over(x: f32["batch embed"], w: f32[" batch"]) -> f32[" embed"]:
    return (x * w)["batch", 0]
"""


def test_import_hook(tmp_path, monkeypatch):
    name = "namedax_typing_hooked_mod"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with jaxtyping.install_import_hook(name, "beartype.beartype"):
            mod = importlib.import_module(name)
        mod.mean_over(arr(batch=2, embed=3), arr(batch=2))
        with raises_check(r"axis 'batch' has size 3, but 'batch' has size 2"):
            mod.mean_over(arr(batch=2, embed=3), arr(batch=3))
    finally:
        sys.modules.pop(name, None)


def test_pytest_plugin(tmp_path):
    (tmp_path / "plugmod.py").write_text(MODULE)
    (tmp_path / "test_plug.py").write_text(textwrap.dedent("""
        import numpy as np, pytest, namedax as nx
        from jaxtyping import TypeCheckError
        from plugmod import mean_over

        def test_checked():
            x = nx.NamedArray(np.zeros((2, 3), "float32"), {"batch": 2, "embed": 3})
            with pytest.raises(TypeCheckError):
                mean_over(x, nx.NamedArray(np.zeros(3, "float32"), {"batch": 3}))
    """))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--jaxtyping-packages=plugmod,beartype.beartype", "test_plug.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


# ---------------------------------------------------------------- the annotation objects themselves


def test_annotations_are_cached_namedarray_subclasses_that_pickle():
    ann = f32["batch embed"]
    assert f32["batch embed"] is ann and issubclass(ann, f32) and issubclass(ann, nx.NamedArray)
    assert ann.__name__ == "f32['batch embed']"
    assert pickle.loads(pickle.dumps(ann)) is ann and pickle.loads(pickle.dumps(NInt)) is NInt
    assert f32["embed batch"].__name__ == "f32['embed batch']"


@pytest.mark.parametrize(
    "spec, err, pattern",
    [
        ("batch batch", ValueError, r"axis 'batch' appears more than once"),
        ("... a ...", ValueError, r"'\.\.\.' appears more than once"),
        ("a=x", ValueError, r"size in 'a=x' must be a non-negative int"),
        ("*batch", ValueError, r"'\*batch' is not an axis name"),
        ("#batch", ValueError, r"'#batch' is not an axis name"),
        (("a", 3), TypeError, r"got int: 3"),
        (["a"], TypeError, r"got \['a'\]"),
    ],
)
def test_bad_specs(spec, err, pattern):
    with pytest.raises(err, match=pattern):
        f32[spec]


def test_not_constructible_and_not_resubscriptable():
    with pytest.raises(TypeError, match=r"f32\['a'\] is an annotation, not a constructor"):
        f32["a"](jnp.zeros(2), {"a": 2})
    with pytest.raises(TypeError, match=r"f32\['a'\] is already subscripted"):
        f32["a"]["b"]
