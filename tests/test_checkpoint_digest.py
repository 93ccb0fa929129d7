"""Checkpoint digests by content (issue 18 item 1): a changed non-array argument, a module constant the model
reads or a function in the state is another sweep; an unreadable one is refused unless `checkpoint_key` names it."""

import dataclasses
import importlib
import logging
import sys
import threading

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution
from namedax.spaces import GridSpace
from test_execution_executors import P


def space(**extra):
    return GridSpace({"a": P("a", 0.0, 1.0), **extra}, n=3)


def model(s, obj=None, **kw):
    return s["a"] * 2.0


def run(d, *args, sp=None, m=model, **kwargs):
    return ParallelExecution(m, sp or space(), *args, checkpoint_dir=d, progress=False, **kwargs).run()


def assert_refused(d, *args, match="other arguments", **kwargs):
    with pytest.raises(ValueError, match=match):
        run(d, *args, **kwargs)


class Plain:  # default repr: only its address tells instances apart
    def __init__(self, v):
        self.v = v


class HidingRepr:
    def __init__(self, v, hidden):
        self.v, self.hidden = v, hidden

    def __repr__(self):
        return f"HidingRepr({self.v})"


class Slotted:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


@dataclasses.dataclass
class DC:
    v: object


class Mod(eqx.Module):
    w: jnp.ndarray
    tag: object = eqx.field(static=True)


class Nested:  # content two levels down, behind a default repr
    def __init__(self, v):
        self.inner = {"x": [Plain(v)]}


CASES = {
    "default repr": (lambda v: Plain(v)),
    "repr leaves out a field": (lambda v: HidingRepr(1, v)),
    "__slots__": (lambda v: Slotted(v)),
    "dataclass field": (lambda v: DC(Plain(v))),
    "equinox static field": (lambda v: Mod(jnp.ones(2), Plain(v))),
    "nested object": (lambda v: Nested(v)),
    "pytree structure": (lambda v: {"a": 1} if v == 1 else {"a": 1, "b": None}),
    "set": (lambda v: {10, Slotted(v) if v == 2 else "x"}),
}


@pytest.mark.parametrize("how", ["positional", "keyword"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_changed_object_argument_is_another_sweep(tmp_path, case, how):
    make = CASES[case]
    call = (lambda v: ((make(v),), {})) if how == "positional" else (lambda v: ((), {"obj": make(v)}))
    args, kwargs = call(1)
    out = run(tmp_path, *args, **kwargs)
    np.testing.assert_allclose(np.asarray(out[:]), np.linspace(0, 1, 3, dtype=np.float32) * 2)
    run(tmp_path, *call(1)[0], **call(1)[1])  # an equal value (another instance) resumes
    args, kwargs = call(2)
    which = "args\\[0\\] differs" if how == "positional" else "kwargs\\['obj'\\] differs"
    assert_refused(tmp_path, *args, match=f"other arguments \\({which}", **kwargs)


def test_attrs_fields(tmp_path):
    attrs = pytest.importorskip("attrs")

    @attrs.define(repr=False)
    class A:
        v: object

    run(tmp_path, A(Plain(1)))
    assert_refused(tmp_path, A(Plain(2)))


def test_cycles_are_digested(tmp_path):
    def cyclic(v):
        x = Plain(v)
        x.me = x
        x.box = {"again": [x, Plain(x)]}
        return x

    run(tmp_path, cyclic(1))
    run(tmp_path, cyclic(1))
    assert_refused(tmp_path, cyclic(2))


def make_function(body, name="user_cell"):
    ns = {"__name__": name}
    exec(f"def f(x):\n    return x * {body}\n", ns)  # a notebook cell run again after an edit
    return ns["f"]


def test_state_holding_a_function_whose_body_changed(tmp_path):
    def m(s):
        return s["f"](s["a"])

    run(tmp_path, sp=space(f=make_function("2.0")), m=m)
    run(tmp_path, sp=space(f=make_function("2.0")), m=m)
    with pytest.raises(ValueError, match="different space.*state leaf"):
        run(tmp_path, sp=space(f=make_function("3.0")), m=m)


def test_model_reading_a_constant_of_another_module(tmp_path, monkeypatch):
    (tmp_path / "i18_config.py").write_text("SCALE = 2.0\n")
    (tmp_path / "i18_model.py").write_text(
        "import i18_config\nfrom i18_helpers import helper\n\n"
        "def model(s):\n    return helper(s['a']) * i18_config.SCALE\n")
    (tmp_path / "i18_helpers.py").write_text("OFFSET = 1.0\n\ndef helper(x):\n    return x + OFFSET\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("i18_config", "i18_model", "i18_helpers"):
        sys.modules.pop(name, None)
    mod = importlib.import_module("i18_model")
    d = tmp_path / "ck"
    out = run(d, m=mod.model)
    np.testing.assert_allclose(np.asarray(out[:]), (np.linspace(0, 1, 3, dtype=np.float32) + 1) * 2)
    run(d, m=mod.model)
    monkeypatch.setattr(sys.modules["i18_config"], "SCALE", 3.0)
    with pytest.raises(ValueError, match="another model.*other code"):
        run(d, m=mod.model)
    monkeypatch.setattr(sys.modules["i18_config"], "SCALE", 2.0)
    run(d, m=mod.model)
    monkeypatch.setattr(sys.modules["i18_helpers"], "OFFSET", 0.5)  # a constant of a function it calls
    with pytest.raises(ValueError, match="another model.*other code"):
        run(d, m=mod.model)


def gen():
    yield 1


@pytest.mark.parametrize("how", ["positional", "keyword"])
@pytest.mark.parametrize("opaque", [threading.Lock, lambda: Plain(gen()), lambda: DC(threading.Lock())],
                         ids=["lock", "object holding a generator", "dataclass holding a lock"])
def test_unreadable_argument_is_refused_unless_keyed(tmp_path, opaque, how):
    obj = opaque()
    args, kwargs = ((obj,), {}) if how == "positional" else ((), {"obj": obj})
    where = (r"positional argument 0 holds args\[0\]" if how == "positional"
             else r"keyword argument 'obj' holds kwargs\['obj'\]")
    with pytest.raises(TypeError, match=f"ParallelExecution: cannot checkpoint this sweep: {where}.*(lock|generator).*"
                       "checkpoint_key="):
        run(tmp_path, *args, **kwargs)
    assert not (tmp_path / "manifest.json").exists()
    out = run(tmp_path, *args, checkpoint_key="lock v1", **kwargs)
    np.testing.assert_allclose(np.asarray(out[:]), np.linspace(0, 1, 3, dtype=np.float32) * 2)
    run(tmp_path, *args, checkpoint_key="lock v1", **kwargs)
    assert_refused(tmp_path, *args, match="other arguments \\(another checkpoint_key", checkpoint_key="lock v2",
                   **kwargs)


def test_checkpoint_key_checks():
    with pytest.raises(TypeError, match="`checkpoint_key` must be a string"):
        ParallelExecution(model, space(), checkpoint_dir="x", checkpoint_key=3)
    with pytest.raises(ValueError, match="`checkpoint_key` is given without `checkpoint_dir`"):
        ParallelExecution(model, space(), checkpoint_key="k")


def test_huge_and_deep_structures_are_bounded(tmp_path):
    with pytest.raises(TypeError, match=r"args\[0\].*more than 1,000,000 objects.*checkpoint_key"):
        run(tmp_path, list(range(1_100_000)))
    deep = []
    for _ in range(400):
        deep = [deep]
    with pytest.raises(TypeError, match=r"args\[0\].*nested deeper than"):
        run(tmp_path, deep)


_log = logging.getLogger("namedax-test-i18")


def logging_model(s):
    _log.debug("point")  # runs while traced: the logger's level cache changes between runs
    return s["a"] * 2.0


def test_module_level_resources_do_not_change_the_digest(tmp_path):
    run(tmp_path, m=logging_model)
    _log.isEnabledFor(logging.INFO), _log.isEnabledFor(logging.ERROR)  # fills the Logger's cache
    run(tmp_path, m=logging_model)  # resumes: the logger is identified by its repr, not its cache
