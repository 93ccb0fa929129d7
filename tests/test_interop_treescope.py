"""NamedArray in treescope (names, sizes, statistics, a named array view) and its short repr."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx

treescope = pytest.importorskip("treescope")

Batch, Embed, Mlp = nx.Axis("batch", 4), nx.Axis("embed", 8), nx.Axis("mlp", 6)


def test_namedax_import_does_not_import_treescope():
    code = "import sys, namedax; print('treescope' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_render_to_text_names_sizes_dtype_and_statistics(key):
    data = jax.random.normal(key, (4, 8))
    x = nx.named(data, (Batch, Embed))
    text = treescope.render_to_text(x)
    assert "NamedArray" in text and "float32" in text
    assert "'batch': 4" in text and "'embed': 8" in text
    # treescope's statistics of the data: the mean, to the two digits it prints
    assert f"≈{float(np.mean(np.asarray(data))):.2}" in text
    assert "\n" not in text.strip()  # one folded line


def test_module_rendering_shows_every_parameter_named_shape(key):
    class Block(eqx.Module):
        up: nx.nn.Linear
        norm: nx.nn.LayerNorm

    block = Block(nx.nn.Linear.init(Embed, Mlp, key=key), nx.nn.LayerNorm.init(Embed))
    text = treescope.render_to_text(block)
    for leaf in jax.tree.leaves(block, is_leaf=lambda v: isinstance(v, nx.NamedArray)):
        shape = "{" + ", ".join(f"'{a.name}': {a.size}" for a in leaf.axes) + "}"
        assert f"<NamedArray float32{shape}" in text
    assert "object at 0x" not in text


def test_adapter_axis_info_is_named_and_positionless(key):
    x = nx.random.normal(key, (Batch, Embed))
    adapter = treescope.type_registries.lookup_ndarray_adapter(x)
    assert adapter is not None
    info = adapter.get_axis_info_for_array_data(x)
    assert all(isinstance(i, treescope.ndarray_adapters.NamedPositionlessAxisInfo) for i in info)
    assert [(i.axis_name, i.size) for i in info] == [(a.name, a.size) for a in x.axes]


def test_adapter_data_and_named_mask(key):
    data = jax.random.normal(key, (4, 8))
    x = nx.named(data, (Batch, Embed))
    adapter = treescope.type_registries.lookup_ndarray_adapter(x)
    values, mask = adapter.get_array_data_with_truncation(x, None, (None, None))
    np.testing.assert_array_equal(values, np.asarray(data))
    assert mask.shape == (4, 8) and mask.all()
    row = nx.named(jnp.array([True, False] * 4), Embed)  # lacks batch, aligned by name
    _, mask = adapter.get_array_data_with_truncation(x, row, (None, None))
    np.testing.assert_array_equal(mask, np.broadcast_to(np.array([True, False] * 4), (4, 8)))
    assert adapter.get_numpy_dtype(x) == np.float32


def test_render_array_labels_axes_by_name(key):
    x = nx.random.normal(key, (Batch, Embed))
    part = treescope.render_array(x).treescope_part
    html = treescope.lowering.render_to_html_as_root(part, compressed=False)
    assert "batch" in html and "embed" in html


def test_traced_and_abstract_render(key):
    x = nx.random.normal(key, (Batch, Embed))
    abstract = jax.eval_shape(lambda: x)
    assert "'batch': 4" in treescope.render_to_text(abstract)
    seen = []
    jax.jit(lambda v: seen.append(treescope.render_to_text(v)) or v)(x)
    assert "traced" in seen[0] and "'embed': 8" in seen[0]


# ---- repr ----


def test_repr_of_a_large_array_is_one_short_line():
    x = nx.zeros({"batch": 512, "embed": 1024})
    r = repr(x)
    assert r == "NamedArray(float32{'batch': 512, 'embed': 1024})"
    assert "\n" not in r and len(r) < 100


def test_repr_of_a_small_array_shows_its_values():
    data = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    r = repr(nx.named(data, ("a", "b")))
    assert "{'a': 3, 'b': 4}" in r and "float32" in r
    body = r[r.index("array=") + len("array=") : -1]
    np.testing.assert_array_equal(np.array(eval(body), dtype=np.float32), data)


def test_repr_threshold_is_the_documented_constant():
    from namedax.core._named_array import REPR_MAX_VALUES

    assert "array=" in repr(nx.zeros({"a": REPR_MAX_VALUES}))
    assert "array=" not in repr(nx.zeros({"a": REPR_MAX_VALUES + 1}))


def test_repr_of_traced_and_abstract_arrays():
    x = nx.zeros({"a": 2, "b": 3}, dtype=jnp.int32)
    assert repr(jax.eval_shape(lambda: x)) == "NamedArray(int32{'a': 2, 'b': 3}, abstract)"
    seen = []
    jax.jit(lambda v: seen.append(repr(v)) or v)(x)
    assert seen == ["NamedArray(int32{'a': 2, 'b': 3}, traced)"]


def test_repr_of_prng_keys_is_one_line():
    keys = nx.random.split(jax.random.key(0), nx.Axis("layers", 3))
    assert repr(keys) == f"NamedArray({keys.dtype}{{'layers': 3}})"


def test_axis_renders_by_name_and_size():
    assert treescope.render_to_text(nx.Axis("embed", 8)) == "Axis(name='embed', size=8)"
