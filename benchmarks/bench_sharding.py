"""Sharding benchmark: a training step placed by axis names against the same step placed by hand.

    python benchmarks/bench_sharding.py [--rounds N] [--quick]

A 4-layer `nn.Stacked` residual MLP block (embed 128, mlp 512, batch 64) takes SGD steps on a
``(data=2, model=2)`` mesh of 4 forced CPU devices (set here, before jax is imported), in three
layouts (Auto mesh axes):

- data parallel: ``{"batch": "data"}``;
- FSDP: parameters stored split along ``embed`` on ``data``, gathered for compute;
- tensor parallel: ``{"batch": "data", "mlp": "model"}``.

namedax places everything with `nx.sharding.shard` and the rules; the hand-written baseline is the
same math on positional arrays (the very same parameter values, taken out of the named model) with
`NamedSharding` / `PartitionSpec` written by position and `with_sharding_constraint`. Before timing,
both steps are checked to give the same loss and parameters. Reported per layout: step time (rounds
interleaved; budget at most 1.05x), the number of all-gather / reduce-scatter / all-reduce /
collective-permute / all-to-all ops in each compiled HLO (`compiled.as_text()`: exact; budget equal)
and the parameter bytes per device (budget equal).
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import argparse  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import namedax as nx  # noqa: E402

EMBED, MLP, BATCH, LAYERS, LR = 128, 512, 64, 4, 0.05
Embed, Mlp = nx.Axis("embed", EMBED), nx.Axis("mlp", MLP)
Batch, Layers = nx.Axis("batch", BATCH), nx.Axis("layers", LAYERS)
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "collective-permute", "all-to-all")

# layout -> (namedax storage rules, namedax compute rules, hand-written storage specs, compute specs)
# hand-written specs: (up weight [L, mlp, embed], up bias [L, mlp], down weight [L, embed, mlp],
# down bias [L, embed], batch [batch, embed])
LAYOUTS = {
    "data parallel": (
        {"batch": "data"}, {"batch": "data"},
        (P(), P(), P(), P(), P("data", None)), (P(), P(), P(), P()),
    ),
    "fsdp": (
        [("batch", "data"), ("embed", "data")], {"batch": "data"},
        (P(None, None, "data"), P(), P(None, "data", None), P(None, "data"), P("data", None)), (P(), P(), P(), P()),
    ),
    "tensor parallel": (
        {"batch": "data", "mlp": "model"}, {"batch": "data", "mlp": "model"},
        (P(None, "model", None), P(None, "model"), P(None, None, "model"), P(), P("data", None)),
        (P(None, "model", None), P(None, "model"), P(None, None, "model"), P()),
    ),
}  # fmt: skip


class Block(eqx.Module):
    up: nx.nn.Linear
    down: nx.nn.Linear

    @classmethod
    def init(cls, *, key):
        k1, k2 = jax.random.split(key)
        return cls(nx.nn.Linear.init(Embed, Mlp, key=k1), nx.nn.Linear.init(Mlp, Embed, key=k2))

    def __call__(self, x):
        return x + self.down(nx.nn.relu(self.up(x)))


def named_loss(stack, x, y):
    return nx.mean((stack.fold(x) - y) ** 2).array


def named_step_for(store, compute):
    def step(stack, x, y):
        loss, g = eqx.filter_value_and_grad(lambda s: named_loss(nx.sharding.shard(s, compute), x, y))(stack)
        g = nx.sharding.shard(g, store)
        return jax.tree.map(lambda p, d: p - LR * d, stack, g), loss

    # jax.jit, as the baseline: every leaf of the model is an array (eqx.filter_jit would add ~0.1-0.7 ms
    # of Python dispatch per call here, which is equinox's cost, not placement's)
    return jax.jit(step)


def raw_params(stack):
    """The named model's values as positional arrays: [L, mlp, embed], [L, mlp], [L, embed, mlp], [L, embed]."""
    s = stack.stacked
    return (
        nx.rearrange(s.up.weight, (Layers, Mlp, Embed)).array, nx.rearrange(s.up.bias, (Layers, Mlp)).array,
        nx.rearrange(s.down.weight, (Layers, Embed, Mlp)).array, nx.rearrange(s.down.bias, (Layers, Embed)).array,
    )  # fmt: skip


def raw_loss(params, x, y):
    def body(h, p):
        w1, b1, w2, b2 = p
        hidden = jax.nn.relu(jnp.einsum("be,me->bm", h, w1) + b1)  # contract without a transpose
        return h + (jnp.einsum("bm,em->be", hidden, w2) + b2), None

    return jnp.mean((jax.lax.scan(body, x, params)[0] - y) ** 2)


def raw_step_for(mesh, store, compute):
    store_s = [NamedSharding(mesh, s) for s in store[:4]]
    compute_s = [NamedSharding(mesh, s) for s in compute]

    def step(params, x, y):
        def loss(ps):
            ps = tuple(jax.lax.with_sharding_constraint(p, s) for p, s in zip(ps, compute_s, strict=True))
            return raw_loss(ps, x, y)

        value, g = jax.value_and_grad(loss)(params)
        g = tuple(jax.lax.with_sharding_constraint(d, s) for d, s in zip(g, store_s, strict=True))
        return tuple(p - LR * d for p, d in zip(params, g, strict=True)), value

    return jax.jit(step)


def count_collectives(hlo: str) -> dict[str, int]:
    return {c: len(re.findall(rf"= \S+ {c}(-start)?\(", hlo)) for c in COLLECTIVES}


def per_device_bytes(arrays) -> int:
    dev0 = jax.devices()[0]
    return sum(s.data.nbytes for a in arrays for s in a.addressable_shards if s.device == dev0)


def setup(layout: str):
    mesh = jax.make_mesh((2, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    store, compute, raw_store, raw_compute = LAYOUTS[layout]
    keys = jax.random.split(jax.random.key(0), LAYERS)
    stack = nx.nn.Stacked.init(Layers, Block)(key=keys)
    kx, ky = jax.random.split(jax.random.key(1))
    x, y = nx.random.normal(kx, (Batch, Embed)), nx.random.normal(ky, (Batch, Embed))
    with jax.set_mesh(mesh):
        n_args = (nx.sharding.shard(stack, store), *nx.sharding.shard((x, y), store))
    placed = zip(raw_params(stack), raw_store, strict=False)  # raw_store's last spec is the batch's
    r_params = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in placed)
    bs = NamedSharding(mesh, raw_store[4])
    r_args = (r_params, jax.device_put(x.array, bs), jax.device_put(y.array, bs))
    return mesh, named_step_for(store, compute), n_args, raw_step_for(mesh, raw_store, raw_compute), r_args


def check_same(mesh, named_step, n_args, raw_step, r_args) -> bool:
    with jax.set_mesh(mesh):
        stack, ln = named_step(*n_args)
    params, lr = raw_step(*r_args)
    same = np.allclose(float(ln), float(lr), rtol=1e-5)
    for a, b in zip(raw_params(stack), params, strict=True):
        same &= np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    return bool(same)


def timed(fn, args, number, mesh=None) -> float:
    with jax.set_mesh(mesh) if mesh is not None else _nothing():
        t = time.perf_counter()
        for _ in range(number):
            out = fn(*args)
        jax.block_until_ready(out)
    return (time.perf_counter() - t) / number


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def measure(layout: str, rounds: int, number: int) -> list[dict]:
    mesh, named_step, n_args, raw_step, r_args = setup(layout)
    same = check_same(mesh, named_step, n_args, raw_step, r_args)
    with jax.set_mesh(mesh):
        n_hlo = named_step.lower(*n_args).compile().as_text()
    r_hlo = raw_step.lower(*r_args).compile().as_text()
    nc, rc = count_collectives(n_hlo), count_collectives(r_hlo)
    timed(named_step, n_args, 1, mesh)
    timed(raw_step, r_args, 1)
    tn, tr = [], []
    for _ in range(rounds):
        tn.append(timed(named_step, n_args, number, mesh))
        tr.append(timed(raw_step, r_args, number))
    ratios = [a / b for a, b in zip(tn, tr, strict=True)]
    base = "hand-written NamedSharding"
    note = "" if same else "RESULTS DIFFER"
    coll = ", ".join(f"{k} {nc[k]}" for k in COLLECTIVES if nc[k] or rc[k]) or "none"
    pb_n = per_device_bytes(jax.tree.leaves(n_args[0]))
    pb_r = per_device_bytes(r_args[0])
    return [
        dict(area="sharding", case=f"{layout}: step", unit="ms", baseline=base, budget="<= 1.05", note=note,
             lib=statistics.median(tn) * 1e3, raw=statistics.median(tr) * 1e3, ratio=statistics.median(ratios),
             lo=min(ratios), hi=max(ratios)),
        dict(area="sharding", case=f"{layout}: collectives in the compiled step ({coll})", unit="ops",
             baseline=base, budget="<= 1.0", note="equal" if nc == rc else f"hand-written: {rc}",
             lib=sum(nc.values()), raw=sum(rc.values()), ratio=sum(nc.values()) / max(1, sum(rc.values())),
             lo=float("nan"), hi=float("nan")),
        dict(area="sharding", case=f"{layout}: parameter bytes per device", unit="B", baseline=base,
             budget="<= 1.0", note="" if pb_n == pb_r else "DIFFER", lib=pb_n, raw=pb_r, ratio=pb_n / pb_r,
             lo=float("nan"), hi=float("nan")),
    ]  # fmt: skip


def run(quick: bool = False) -> list[dict]:
    """Entry point for benchmarks/run.py."""
    if jax.device_count() < 4:
        raise RuntimeError(f"bench_sharding needs 4 devices, has {jax.device_count()} (jax imported too early?)")
    rows = []
    for layout in LAYOUTS:
        rows += measure(layout, rounds=3 if quick else 15, number=5 if quick else 20)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = run(True) if args.quick else [r for lay in LAYOUTS for r in measure(lay, args.rounds, 20)]
    for r in rows:
        print(f"{r['case']:80s} {r['lib']:10.3f} vs {r['raw']:10.3f} {r['unit']:3s} ratio {r['ratio']:.3f} "
              f"[{r['lo']:.2f}, {r['hi']:.2f}] {r.get('note', '')}")  # fmt: skip


if __name__ == "__main__":
    main()
