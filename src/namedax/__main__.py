"""``python -m namedax demo``: a short tour of named arrays (the full demo grows with the library)."""

from __future__ import annotations

import argparse


def _demo() -> None:
    import jax.numpy as jnp

    import namedax as nx

    Batch, Embed = nx.Axis("batch", 2), nx.Axis("embed", 3)
    x = nx.named(jnp.arange(6.0).reshape(2, 3), (Batch, Embed))
    bias = nx.named(jnp.array([0.5, -0.5, 1.0]), (Embed,))
    print("x          :", x.shape)
    print("x + bias   :", (x + bias).shape, "(broadcast by name)")
    print("sum(embed) :", nx.sum(x, axis=Embed).array, "over", nx.sum(x, axis=Embed).shape)
    print("x[batch, 1]:", x[Batch, 1].array)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="namedax", description="namedax command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run a short tour of named arrays")
    args = parser.parse_args(argv)
    if args.command == "demo":
        _demo()


if __name__ == "__main__":
    main()
