"""``python -m namedax demo`` (or the ``namedax demo`` console script): a one-minute tour.

It names some arrays, trains a small `Stacked` residual MLP for a few steps, sweeps a damped
oscillator over a 2-D `GridSpace` with `ParallelExecution`, prints the sweep as a table with its
axis names, and writes a heatmap PNG (with the ``plot`` extra, matplotlib, installed).

``--devices N`` forces N CPU devices. XLA reads that setting (``XLA_FLAGS``) when its CPU backend
starts, not when JAX is imported; ``python -m namedax`` imports namedax, and so JAX, before this
module runs, but nothing has started the backend yet, so setting the flag here is in time. When
something has (``main`` called from a program that already used JAX), the command is run again in
a fresh process with the flag set.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="namedax", description="namedax command-line tools")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo",
        help="a one-minute tour: named arrays, a Stacked MLP, a parameter sweep",
        description="Name arrays, train a Stacked MLP for a few steps, sweep a damped oscillator "
        "over a 2-D GridSpace and print (and plot) the result by axis name.",
    )
    d.add_argument("--out", default="namedax_demo_sweep.png", help="path of the heatmap PNG (default: %(default)s)")
    d.add_argument("--grid", type=int, default=24, help="points per sweep axis (default: %(default)s)")
    d.add_argument("--devices", type=int, default=None,
                   help="CPU devices to force and sweep over (sets XLA_FLAGS before JAX starts; default: "
                   "whatever JAX finds)")
    d.add_argument("--steps", type=int, default=30, help="training steps for the MLP (default: %(default)s)")
    d.add_argument("--no-plot", action="store_true", help="skip the heatmap")
    return p


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def _named_arrays() -> None:
    import jax.numpy as jnp

    import namedax as nx

    _section("named arrays")
    Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
    x = nx.named(jnp.arange(6.0).reshape(2, 3), (Batch, Embed))
    bias = nx.named(jnp.array([0.5, -0.5, 1.0]), (Embed,))
    print("x                 :", x.shape)
    print("x + bias          :", (x + bias).shape, "(broadcast by name)")
    print("sum(x, embed)     :", nx.sum(x, axis=Embed).array.tolist(), "over", nx.sum(x, axis=Embed).shape)
    print('x["batch", 1]     :', x["batch", 1].array.tolist())
    try:
        _ = x + nx.zeros({"embed": 5})
    except ValueError as e:
        print("a mistake         :", e)


def _train(steps: int) -> None:
    import equinox as eqx
    import jax

    import namedax as nx

    _section("a Stacked residual MLP")
    Batch, Feat, Hidden, Layers = nx.Axis("batch", 64), nx.Axis("feat", 8), nx.Axis("hidden", 32), nx.Axis("layers", 4)

    class Block(eqx.Module):
        norm: nx.nn.LayerNorm
        up: nx.nn.Linear
        down: nx.nn.Linear

        @classmethod
        def init(cls, *, key):
            k1, k2 = jax.random.split(key)
            return cls(nx.nn.LayerNorm.init(Feat), nx.nn.Linear.init(Feat, Hidden, key=k1),
                       nx.nn.Linear.init(Hidden, Feat, key=k2))

        def __call__(self, x):
            return x + self.down(nx.nn.gelu(self.up(self.norm(x))))

    kx, kw, kinit = jax.random.split(jax.random.key(0), 3)
    x = nx.random.normal(kx, (Batch, Feat))
    target = nx.sin(nx.dot(x, nx.random.normal(kw, (Feat,)), axis=Feat))  # a toy regression target
    blocks = nx.nn.Stacked.init(Layers, Block)(key=jax.random.split(kinit, Layers.size))
    readout = nx.zeros((Feat,))  # a linear readout: contract feat away

    def loss(model, x, y):
        blocks, readout = model
        return nx.mean((nx.dot(blocks.fold(x), readout, axis=Feat) - y) ** 2).array

    @eqx.filter_jit
    def step(model, x, y):
        value, grads = eqx.filter_value_and_grad(loss)(model, x, y)
        model = jax.tree.map(lambda p, g: p - 0.05 * g, model, grads, is_leaf=lambda v: v is None)
        return model, value

    model = (blocks, readout)
    print(f"{Layers.size} layers stacked on {Layers}: weight axes", blocks.stacked.up.weight.axes)
    t0 = time.perf_counter()
    first = last = None
    for i in range(steps):
        model, value = step(model, x, target)
        first = float(value) if first is None else first
        last = float(value)
        if i % max(1, steps // 5) == 0 or i == steps - 1:
            print(f"  step {i:3d}  loss {last:.4f}")
    print(f"loss {first:.4f} -> {last:.4f} in {time.perf_counter() - t0:.1f} s (first step compiles)")


def _sweep(n: int, n_devices: int | None, out: str, plot: bool) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from namedax.execution import ParallelExecution
    from namedax.spaces import GridSpace, Parameter

    _section("a parameter sweep over a 2-D grid")

    def oscillator(state, steps=400, dt=0.05):
        """Energy left after `steps` semi-implicit Euler steps of x'' = -omega^2 x - 2 zeta omega x'."""
        omega, zeta = state["omega"] * 1.0, state["zeta"] * 1.0

        def body(_, xv):
            x, v = xv
            v = v + dt * (-(omega**2) * x - 2.0 * zeta * omega * v)
            return (x + dt * v, v)

        x, v = jax.lax.fori_loop(0, steps, body, (jnp.ones_like(omega), jnp.zeros_like(omega)))
        return 0.5 * (v**2 + (omega * x) ** 2)

    state = {
        "omega": Parameter("omega", 1.0, low=0.5, high=3.0, free=True),
        "zeta": Parameter("zeta", 0.1, low=0.0, high=0.5, free=True),
    }
    space = GridSpace(state, n=n)
    n_pmap = None if n_devices is None else n_devices
    print(f"space: {space.N} points over axes {space.axes}; devices: {jax.device_count()}")
    if n_devices is not None:
        print(f"sweeping over {n_devices} devices (n_pmap={n_devices})")
    t0 = time.perf_counter()
    results = ParallelExecution(oscillator, space, n_pmap=n_pmap, progress=True).run()
    dt = time.perf_counter() - t0
    energy = results.named()
    print(f"swept {len(results)} points in {dt:.2f} s; result axes {energy.axes}")
    coords = space.coords()
    grid = np.asarray(energy.rearrange(("omega", "zeta")).array)
    rows = np.linspace(0, n - 1, min(n, 6)).astype(int)
    cols = np.linspace(0, n - 1, min(n, 5)).astype(int)
    print("energy left     " + "".join(f"zeta={coords['zeta'][j]:<7.3f}" for j in cols))
    for i in rows:
        print(f"omega={coords['omega'][i]:<9.3f}" + "".join(f"{grid[i, j]:<12.4g}" for j in cols))
    if not plot:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'namedax[plot]'): skipping the heatmap")
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.pcolormesh(coords["zeta"], coords["omega"], np.log10(grid + 1e-12), shading="nearest")
    ax.set_xlabel("zeta (damping)")
    ax.set_ylabel("omega (frequency)")
    ax.set_title("log10 energy left")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"heatmap written to {os.path.abspath(out)}")


_REEXEC = "NAMEDAX_DEMO_DEVICES"  # set in the re-run process, so that it never re-runs again
_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def _force_devices(n: int, argv: list[str]) -> None:
    """Make JAX see ``n`` CPU devices: set XLA_FLAGS before the backend starts, or re-run the command."""
    if n < 1:
        raise SystemExit(f"namedax demo: --devices must be at least 1, got {n}")
    flags = re.sub(rf"{_DEVICE_FLAG}=\S*", "", os.environ.get("XLA_FLAGS", "")).split()
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"{_DEVICE_FLAG}={n}"])
    import jax

    found = jax.device_count()  # starts the backend, which reads XLA_FLAGS now unless it already ran
    if found == n:
        return
    if os.environ.get(_REEXEC) == str(n):
        raise SystemExit(
            f"namedax demo: --devices {n}: JAX sees {found} {jax.default_backend()} devices even with "
            f"XLA_FLAGS={os.environ['XLA_FLAGS']!r} (the flag forces CPU devices; on a GPU or TPU use "
            "--devices with the real device count, or JAX_PLATFORMS=cpu)"
        )
    os.environ[_REEXEC] = str(n)
    print(f"JAX already started with {found} devices; running the demo again with {n}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "namedax", *argv])


def demo(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    if args.grid < 2:
        raise SystemExit("namedax demo: --grid must be at least 2")
    if args.devices is not None:
        _force_devices(args.devices, sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    _named_arrays()
    _train(args.steps)
    _sweep(args.grid, args.devices, args.out, not args.no_plot)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        demo(args, argv)


if __name__ == "__main__":
    main()
