"""penzai's named axes (``pz.nx``) on namedax's eager-op workload, against raw JAX in its own venv.

    benchmarks/peers/.venvs/penzai/bin/python benchmarks/peers/peer_penzai.py [--quick]

The cases and shapes copy benchmarks/bench_eager.py. penzai has no named reductions or contractions:
the idiom is ``pz.nx.nmap(jnp.fn)(x.untag(...))`` (untag the axes to work on positionally, nmap the
jax.numpy function over the rest), which is what is timed. Prints JSON lines.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version

import jax
import jax.numpy as jnp
from _timing import emit, emit_error, emit_meta, pair
from penzai import pz


def eager(rounds: int, number: int) -> None:
    a = jax.random.normal(jax.random.key(0), (4, 8))
    b = jax.random.normal(jax.random.key(1), (4, 8))
    w = jax.random.normal(jax.random.key(2), (8, 16))
    x, y = pz.nx.wrap(a).tag("batch", "embed"), pz.nx.wrap(b).tag("batch", "embed")
    bt = jnp.asarray(b.T)
    xt = pz.nx.wrap(bt).tag("embed", "batch")
    wn = pz.nx.wrap(w).tag("embed", "out")
    nsum, ndot, nexp = pz.nx.nmap(jnp.sum), pz.nx.nmap(jnp.dot), pz.nx.nmap(jnp.exp)
    cases = {
        "x + y": (lambda: x + y, lambda: a + b),
        "x + y (transposed)": (lambda: x + xt, lambda: a + jnp.transpose(bt)),
        "x * 2.0": (lambda: x * 2.0, lambda: a * 2.0),
        "exp(x)": (lambda: nexp(x), lambda: jnp.exp(a)),
        "sum(x, embed)": (lambda: nsum(x.untag("embed")), lambda: jnp.sum(a, axis=1)),
        "sum(x)": (lambda: nsum(x.untag("batch", "embed")), lambda: jnp.sum(a)),
        "dot(x, w, embed) vs jnp.dot": (lambda: ndot(x.untag("embed"), wn.untag("embed")), lambda: jnp.dot(a, w)),
        "dot(x, w, embed) vs jnp.einsum": (lambda: ndot(x.untag("embed"), wn.untag("embed")),
                                           lambda: jnp.einsum("be,eo->bo", a, w)),
        "x[batch, 1]": (lambda: x[{"batch": 1}], lambda: a[1]),
        "x[embed, 2:6]": (lambda: x[{"embed": slice(2, 6)}], lambda: a[:, 2:6]),
    }
    for name, (lib_fn, raw_fn) in cases.items():
        try:
            emit("eager", name, pair(lib_fn, raw_fn, rounds=rounds, number=number), unit="us", baseline="jax.numpy",
                 note="nmap(jnp.fn) over untagged axes" if "sum" in name or "dot" in name or "exp" in name else "")
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            emit_error("eager", name, e)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    q = p.parse_args(argv).quick
    emit_meta("penzai", version("penzai"))
    eager(rounds=5 if q else 21, number=50 if q else 200)  # its ops take milliseconds


if __name__ == "__main__":
    main()
