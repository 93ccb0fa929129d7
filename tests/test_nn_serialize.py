"""Checkpoints by name: state dicts and safetensors files, checked against the files' own tensors
(read back with safetensors.numpy) and the models' arrays; every mismatch refused with its key."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx

st = pytest.importorskip("safetensors.numpy")
from safetensors import safe_open  # noqa: E402

Batch, Embed, Mlp, Out = nx.Axis("batch", 2), nx.Axis("embed", 4), nx.Axis("mlp", 6), nx.Axis("out", 3)
Heads, HeadSize, Vocab, Layers = nx.Axis("heads", 2), nx.Axis("head_size", 2), nx.Axis("vocab", 5), nx.Axis("layers", 3)
Ch, Hgt, Wid = nx.Axis("ch", 2), nx.Axis("h", 5), nx.Axis("w", 5)


def _is_named(v):
    return isinstance(v, nx.NamedArray)


def _leaves(tree):
    return jax.tree.leaves(tree, is_leaf=_is_named)


def assert_same_arrays(a, b):
    """Same structure, every array leaf bitwise equal with the same axes and dtype."""
    la, ta = jax.tree.flatten(a, is_leaf=_is_named)
    lb, tb = jax.tree.flatten(b, is_leaf=_is_named)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        if _is_named(x):
            assert x.axes == y.axes and x.dtype == y.dtype
            np.testing.assert_array_equal(np.asarray(x.array), np.asarray(y.array))
        elif eqx.is_array(x):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            assert x == y


class Block(eqx.Module):
    up: nx.nn.Linear
    down: nx.nn.Linear
    norm: nx.nn.LayerNorm

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(
            nx.nn.Linear.init(Embed, Mlp, key=k1), nx.nn.Linear.init(Mlp, Embed, key=k2), nx.nn.LayerNorm.init(Embed)
        )

    def __call__(self, x):
        return self.norm(x + self.down(nx.nn.relu(self.up(x))))


def stack_of_blocks(key):
    return nx.nn.Stacked.init(Layers, Block)(key=jax.random.split(key, Layers.size))


def perturbed(model, key):
    """Every array leaf replaced by random values (norm weights are ones, biases zeros at init)."""
    leaves, treedef = jax.tree.flatten(model, is_leaf=_is_named)
    keys = iter(jax.random.split(key, len(leaves)))

    def fresh(leaf):
        if _is_named(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return nx.named(jax.random.normal(next(keys), leaf.array.shape, leaf.dtype), leaf.axes)
        return leaf

    return treedef.unflatten([fresh(v) for v in leaves])


MODULES = {
    "linear": lambda k: nx.nn.Linear.init(Embed, Out, key=k),
    "embedding": lambda k: nx.nn.Embedding.init(Vocab, Embed, key=k),
    "layer_norm": lambda k: nx.nn.LayerNorm.init(Embed),
    "rms_norm": lambda k: nx.nn.RMSNorm.init(Embed),
    "mlp": lambda k: nx.nn.MLP.init(Embed, Out, Mlp, 2, key=k),
    "mha": lambda k: nx.nn.MultiHeadAttention.init(Embed, Heads, HeadSize, key=k, use_bias=True),
    "conv": lambda k: nx.nn.Conv.init(("h", "w"), Ch, Out, 3, key=k),
    "conv_transpose": lambda k: nx.nn.ConvTranspose.init(("h", "w"), Ch, Out, 3, key=k),
    "stacked": stack_of_blocks,
    "bf16_linear": lambda k: nx.nn.Linear.init(Embed, Out, key=k, dtype=jnp.bfloat16),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_round_trip_every_module(name, tmp_path, key):
    model = perturbed(MODULES[name](key), jax.random.key(1))
    path = tmp_path / "m.safetensors"
    nx.nn.save(path, model)
    like = MODULES[name](jax.random.key(7))  # other values, same structure
    back = nx.nn.load(path, like=like)
    assert_same_arrays(back, model)
    # state dicts round trip without a file too
    assert_same_arrays(nx.nn.from_state_dict(like, nx.nn.state_dict(model)), model)


def test_round_trip_batch_norm_with_state(tmp_path, key):
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(Embed, momentum=0.5)
    x = nx.random.normal(key, (Batch, Embed))
    _, state = bn(x, state)  # running statistics away from their initial values
    path = tmp_path / "bn.safetensors"
    nx.nn.save(path, {"model": bn, "state": state})
    like = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(Embed, momentum=0.5)
    back = nx.nn.load(path, like={"model": like[0], "state": like[1]})
    assert_same_arrays(back, {"model": bn, "state": state})
    mean, var = back["state"].get(back["model"].index)
    np.testing.assert_array_equal(np.asarray(mean.array), np.asarray(state.get(bn.index)[0].array))


def test_file_layout_keys_axes_and_tensors(tmp_path, key):
    stack = perturbed(stack_of_blocks(key), jax.random.key(2))
    model = {"blocks": stack, "head": nx.nn.Linear.init(Embed, Out, key=key), "scale": jnp.arange(3.0)}
    path = tmp_path / "m.safetensors"
    nx.nn.save(path, model, metadata={"note": "hi"})
    tensors = st.load_file(path)
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    expected = {
        f"blocks.{i}.{m}.{p}"
        for i in range(3)
        for m, p in [
            ("up", "weight"),
            ("up", "bias"),
            ("down", "weight"),
            ("down", "bias"),
            ("norm", "weight"),
            ("norm", "bias"),
        ]
    }
    assert set(tensors) == expected | {"head.weight", "head.bias", "scale"}
    axes = json.loads(meta["namedax.axes"])
    assert meta["note"] == "hi" and meta["namedax.format"] == "1"
    for i in range(3):  # layer i of the stack is slice i of its stacked parameters
        ref = np.asarray(stack.stacked.up.weight.array)[i]  # stacked: (layers, mlp, embed)
        np.testing.assert_array_equal(tensors[f"blocks.{i}.up.weight"], ref)
        assert axes[f"blocks.{i}.up.weight"] == ["mlp", "embed"]
    np.testing.assert_array_equal(tensors["scale"], np.arange(3.0, dtype=np.float32))
    assert "scale" not in axes  # a plain array has no names
    back = nx.nn.load(path, like=model)
    assert_same_arrays(back, model)


def test_state_dict_keys_and_values(key):
    model = {"blocks": [nx.nn.Linear.init(Embed, Out, key=key)], "act": jax.nn.relu, "eps": 1e-5}
    sd = nx.nn.state_dict(model)
    assert list(sd) == ["blocks.0.weight", "blocks.0.bias"]  # functions and floats are not saved
    assert sd["blocks.0.weight"] is model["blocks"][0].weight


def test_abstract_like_and_non_array_leaves_come_from_like(tmp_path, key):
    mlp = nx.nn.MLP.init(Embed, Out, Mlp, 1, activation=nx.nn.gelu, key=key)
    path = tmp_path / "mlp.safetensors"
    nx.nn.save(path, mlp)
    abstract = eqx.filter_eval_shape(lambda k: nx.nn.MLP.init(Embed, Out, Mlp, 1, activation=nx.nn.gelu, key=k), key)
    back = nx.nn.load(path, like=abstract)
    assert_same_arrays(back, mlp)
    x = nx.random.normal(key, (Batch, Embed))
    np.testing.assert_array_equal(np.asarray(back(x).array), np.asarray(mlp(x).array))


def test_names_decide_not_positions(key):
    lin = nx.nn.Linear.init(Embed, Out, key=key)
    sd = nx.nn.state_dict(lin)
    sd["weight"] = sd["weight"].rearrange(("embed", "out"))
    back = nx.nn.from_state_dict(lin, sd)
    np.testing.assert_array_equal(np.asarray(back.weight.array), np.asarray(lin.weight.array))
    assert back.weight.axes == lin.weight.axes


# ---- files from elsewhere ----


def torch_style_file(path, rng):
    """What a PyTorch model with three blocks of fc1/fc2 (torch Linear weights are (out, in)) and an
    embedding would write."""
    tensors = {"model.embed_tokens.weight": rng.normal(size=(5, 4)).astype(np.float32)}
    for i in range(3):
        tensors[f"model.layers.{i}.mlp.fc1.weight"] = rng.normal(size=(6, 4)).astype(np.float32)
        tensors[f"model.layers.{i}.mlp.fc1.bias"] = rng.normal(size=(6,)).astype(np.float32)
        tensors[f"model.layers.{i}.mlp.fc2.weight"] = rng.normal(size=(4, 6)).astype(np.float32)
        tensors[f"model.layers.{i}.mlp.fc2.bias"] = rng.normal(size=(4,)).astype(np.float32)
        tensors[f"model.layers.{i}.rotary.inv_freq"] = np.ones(2, np.float32)  # a buffer we do not have
    st.save_file(tensors, str(path))
    return tensors


class Fc(eqx.Module):
    fc1: nx.nn.Linear
    fc2: nx.nn.Linear

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(nx.nn.Linear.init(Embed, Mlp, key=k1), nx.nn.Linear.init(Mlp, Embed, key=k2))


class Net(eqx.Module):
    embed: nx.nn.Embedding
    blocks: nx.nn.Stacked

    @classmethod
    def init(cls, key):
        k1, k2 = jax.random.split(key)
        return cls(
            nx.nn.Embedding.init(Vocab, Embed, key=k1),
            nx.nn.Stacked.init(Layers, Fc)(key=jax.random.split(k2, Layers.size)),
        )


def torch_key(k):
    if k.endswith("inv_freq"):
        return None  # dropped
    return k.replace("model.embed_tokens", "embed").replace("model.layers", "blocks").replace(".mlp.", ".")


def test_pytorch_style_file_with_key_map(tmp_path, key, rng):
    path = tmp_path / "torch.safetensors"
    tensors = torch_style_file(path, rng)
    net = nx.nn.load(path, like=Net.init(key), key_map=torch_key)
    np.testing.assert_array_equal(np.asarray(net.embed.weight.array), tensors["model.embed_tokens.weight"])
    for i in range(3):
        layer = net.blocks.get_layer(i)
        np.testing.assert_array_equal(
            nx.rearrange(layer.fc1.weight, ("mlp", "embed")).array, tensors[f"model.layers.{i}.mlp.fc1.weight"]
        )
        np.testing.assert_array_equal(layer.fc2.bias.array, tensors[f"model.layers.{i}.mlp.fc2.bias"])
    # the model runs: the embedding row through the stack equals the torch-layout computation
    x = net.embed(nx.named(jnp.array([1, 3]), "batch"))
    ref = tensors["model.embed_tokens.weight"][[1, 3]]
    for i in range(3):
        h = np.maximum(
            ref @ tensors[f"model.layers.{i}.mlp.fc1.weight"].T + tensors[f"model.layers.{i}.mlp.fc1.bias"], 0
        )
        ref = h @ tensors[f"model.layers.{i}.mlp.fc2.weight"].T + tensors[f"model.layers.{i}.mlp.fc2.bias"]
    y = net.blocks.fold_via(lambda layer, v: layer.fc2(nx.nn.relu(layer.fc1(v))))(x)
    np.testing.assert_allclose(np.asarray(nx.rearrange(y, ("batch", "embed")).array), ref, rtol=1e-5, atol=1e-5)


def test_dict_key_map_and_file_axes_for_another_layout(tmp_path, key, rng):
    w = rng.normal(size=(4, 3)).astype(np.float32)  # stored (in, out): a JAX/flax layout
    st.save_file({"kernel": w, "b": np.zeros(3, np.float32)}, str(tmp_path / "f.safetensors"))
    lin = nx.nn.Linear.init(Embed, Out, key=key)
    with pytest.raises(ValueError, match=r"'weight': shape \(4, 3\), the model has axes \{'out': 3, 'embed': 4\}"):
        nx.nn.load(tmp_path / "f.safetensors", like=lin, key_map={"kernel": "weight", "b": "bias"})
    back = nx.nn.load(
        tmp_path / "f.safetensors",
        like=lin,
        key_map={"kernel": "weight", "b": "bias"},
        file_axes={"weight": ("embed", "out")},
    )
    np.testing.assert_array_equal(np.asarray(nx.rearrange(back.weight, ("embed", "out")).array), w)
    with pytest.raises(ValueError, match=r"'kernel' has shape \(4, 3\), but 1 axis names \('embed',\) given"):
        nx.nn.load(
            tmp_path / "f.safetensors",
            like=lin,
            key_map={"kernel": "weight", "b": "bias"},
            file_axes=lambda k: ("embed",) if k == "weight" else None,
        )


# ---- mismatches, each with its key ----


@pytest.fixture
def saved(tmp_path, key):
    model = {"blocks": stack_of_blocks(key), "head": nx.nn.Linear.init(Embed, Out, key=key)}
    path = tmp_path / "m.safetensors"
    nx.nn.save(path, model)
    return path, model


def test_missing_and_unexpected_keys(saved, key):
    path, model = saved
    more = {**model, "extra": nx.nn.Linear.init(Embed, Out, key=key)}
    with pytest.raises(ValueError, match=r"'extra.weight': missing \(the model has axes \{'out': 3, 'embed': 4\}"):
        nx.nn.load(path, like=more)
    fewer = {"blocks": model["blocks"]}
    with pytest.raises(ValueError, match=r"'head.weight': unexpected key"):
        nx.nn.load(path, like=fewer)
    deeper = {
        "blocks": nx.nn.Stacked.init(nx.Axis("layers", 4), Block)(key=jax.random.split(key, 4)),
        "head": model["head"],
    }
    with pytest.raises(ValueError, match=r"'blocks.3.up.weight': missing"):
        nx.nn.load(path, like=deeper)


def test_wrong_names_sizes_and_dtype(saved, key):
    path, model = saved
    renamed = {**model, "head": nx.nn.Linear.init(nx.Axis("hidden", 4), Out, key=key)}
    with pytest.raises(
        ValueError, match=r"'head.weight': axis names \['out', 'embed'\], the model has \['out', 'hidden'\]"
    ):
        nx.nn.load(path, like=renamed)
    resized = {**model, "head": nx.nn.Linear.init(Embed, nx.Axis("out", 5), key=key)}
    with pytest.raises(ValueError, match=r"'head.weight': sizes \{'out': 3\}, the model has \{'out': 5, 'embed': 4\}"):
        nx.nn.load(path, like=resized)
    half = {**model, "head": nx.nn.Linear.init(Embed, Out, key=key, dtype=jnp.bfloat16)}
    with pytest.raises(
        ValueError, match=r"'head.weight': dtype float32, the model has bfloat16 \(cast=True converts\)"
    ):
        nx.nn.load(path, like=half)
    back = nx.nn.load(path, like=half, cast=True)
    assert back["head"].weight.dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(back["head"].weight.array), np.asarray(model["head"].weight.array).astype(jnp.bfloat16)
    )


def test_every_problem_listed_at_once(saved, key):
    path, model = saved
    other = {"blocks": model["blocks"], "tail": nx.nn.Linear.init(Embed, Out, key=key)}
    with pytest.raises(ValueError) as info:
        nx.nn.load(path, like=other)
    msg = str(info.value)
    assert "4 problem(s)" in msg and msg.count("missing") == 2 and msg.count("unexpected key") == 2
    assert str(path) in msg


def test_key_map_collision_and_bad_metadata(saved, tmp_path, key):
    path, model = saved
    with pytest.raises(ValueError, match=r"both map to the model key 'x'"):
        nx.nn.load(path, like=model, key_map=lambda k: "x")
    with pytest.raises(ValueError, match=r"metadata key 'namedax.axes' is reserved"):
        nx.nn.save(tmp_path / "x.safetensors", model, metadata={"namedax.axes": "{}"})
    with pytest.raises(TypeError, match=r"metadata must map str to str"):
        nx.nn.save(tmp_path / "x.safetensors", model, metadata={"n": 1})
    with pytest.raises(TypeError, match=r"'k' holds PRNG keys"):
        nx.nn.save(tmp_path / "x.safetensors", {"k": jax.random.key(0)})


def test_shared_leaf_of_a_stack_must_agree(tmp_path, key):
    stack = stack_of_blocks(key)
    shared = eqx.tree_at(lambda s: s.stacked.norm.weight, stack, nx.ones(Embed))  # no Layers axis: shared
    path = tmp_path / "s.safetensors"
    nx.nn.save(path, shared)
    assert_same_arrays(nx.nn.load(path, like=shared), shared)
    tensors = st.load_file(path)
    tensors["1.norm.weight"] = tensors["1.norm.weight"] * 2
    st.save_file(tensors, str(path), metadata=safe_open(path, framework="numpy").metadata())
    with pytest.raises(ValueError, match=r"differs between them"):
        nx.nn.load(path, like=shared)


def test_nested_stacks_are_unstacked_on_both_levels(tmp_path, key):
    Inner = nx.Axis("inner", 2)

    class Outer(eqx.Module):
        norms: nx.nn.Stacked
        scale: jax.Array  # a plain array: (outer layers, inner layers) inside the two stacks

        @classmethod
        def init(cls, *, key):
            return cls(nx.nn.Stacked.init(Inner, nx.nn.LayerNorm)(Embed), jax.random.normal(key, (2,)))

    model = perturbed(nx.nn.Stacked.init(Layers, Outer)(key=jax.random.split(key, 3)), jax.random.key(3))
    path = tmp_path / "nested.safetensors"
    nx.nn.save(path, model)
    tensors = st.load_file(path)
    assert sorted(tensors) == sorted(
        [f"{i}.norms.{j}.{p}" for i in range(3) for j in range(2) for p in ("weight", "bias")]
        + [f"{i}.scale" for i in range(3)]
    )
    w = nx.rearrange(model.stacked.norms.stacked.weight, ("layers", "inner", "embed")).array
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(tensors[f"{i}.norms.{j}.weight"], np.asarray(w)[i, j])
        np.testing.assert_array_equal(tensors[f"{i}.scale"], np.asarray(model.stacked.scale)[i])
    assert_same_arrays(nx.nn.load(path, like=nx.nn.Stacked.init(Layers, Outer)(key=jax.random.split(key, 3))), model)


def test_model_and_optax_state_round_trip_with_zero_d_leaves(tmp_path, key):
    optax = pytest.importorskip("optax")
    model = nx.nn.MLP.init(Embed, Out, Mlp, 1, key=key)
    opt = optax.adamw(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_array))
    grads = jax.tree.map(lambda v: v * 0.5, eqx.filter(model, eqx.is_array))
    _, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))  # count 1, moments nonzero
    path = tmp_path / "train.safetensors"
    nx.nn.save(path, {"model": model, "opt": state})
    tensors = st.load_file(path)
    assert tensors["opt.0.count"].shape == () and int(tensors["opt.0.count"]) == 1
    fresh = nx.nn.MLP.init(Embed, Out, Mlp, 1, key=jax.random.key(5))
    like = {"model": fresh, "opt": opt.init(eqx.filter(fresh, eqx.is_array))}
    assert_same_arrays(nx.nn.load(path, like=like), {"model": model, "opt": state})


def test_file_in_another_axis_order_loads_by_name(tmp_path, key):
    in_first = nx.nn.Linear.init(Embed, Out, key=key, out_first=False)
    assert [a.name for a in in_first.weight.axes] == ["embed", "out"]
    path = tmp_path / "in_first.safetensors"
    nx.nn.save(path, in_first)
    like = nx.nn.Linear.init(Embed, Out, key=jax.random.key(3))  # (out, embed)
    back = nx.nn.load(path, like=like)
    assert back.weight.axes == like.weight.axes
    np.testing.assert_array_equal(np.asarray(back.weight.array), np.asarray(in_first.weight.array).T)


def test_traced_save_is_refused(tmp_path, key):
    lin = nx.nn.Linear.init(Embed, Out, key=key)
    with pytest.raises(TypeError, match=r"nn.save: 'weight' is traced"):
        jax.jit(lambda m: nx.nn.save(tmp_path / "x.safetensors", m))(lin)
