"""Executors: run a model over every point of a space, on every device, and get the results by name.

``ParallelExecution(model, space, *args, **kwargs).run()`` evaluates ``model(state, *args, **kwargs)``
at every point of a `namedax.spaces` space and returns `Results`: ``results[i]`` is the output at
point ``i``, ``results.named()`` the outputs over the space's axes (a grid sweep comes back as a
grid), ``results.to_xarray()`` an xarray object with the parameter values as coordinates.
`SequentialExecution` does the same one point at a time, for debugging. `optimize` runs an optax
optimizer from every point of a space (multi-start optimisation) and returns `OptimizeResults`.

How a parallel sweep runs:

- Points are computed on device from their flat index, a chunk at a time (``space.block``): no
  grid is built anywhere, and memory is a few bytes per point beyond the outputs.
- Each device runs ``lax.map``-style loops over vmapped chunks of ``n_vmap`` points (on CPU chunks
  of about 10^3 points are several times faster than one vmap over everything). The devices work
  through ``jax.shard_map`` over a one-axis mesh, each on its own contiguous run of points.
- The host calls that program block after block, sizing each block to about a second of compute
  (and at most 64 MB of outputs), copies finished blocks into numpy arrays while the next one runs,
  shows a progress bar (tqdm) on a terminal or in a notebook, and with ``checkpoint_dir`` writes
  every finished block to disk, so an interrupted sweep resumes where it stopped; with
  ``store="sweep.zarr"`` every finished block is streamed to a Zarr store instead (results larger
  than memory, read back lazily; `open_results` reopens it, ``xarray.open_zarr`` reads it).
- Padding (when N is not a multiple of ``n_vmap`` times the devices) repeats the last real point,
  so the model never sees a made-up state, and never reaches the results.

Results do not depend on ``n_vmap`` or ``n_pmap`` (up to float rounding of the model under vmap).
A stochastic model gets its own key per point with ``key=`` (`point_key`: folded from the point's
flat index, so the draws do not depend on how the sweep is cut up either), and ``on_error=``
chooses what a failing point does: stop the sweep (``"raise"``), fill NaN (``"nan"``), or also be
recorded in ``Results.failed`` for a ``rerun`` (``"mark"``).

    >>> import jax.numpy as jnp
    >>> from namedax.spaces import GridSpace, Parameter
    >>> from namedax.execution import ParallelExecution
    >>> state = {"k": Parameter("k", 1.0, low=0.0, high=2.0, free=True),
    ...          "x0": Parameter("x0", 1.0, low=1.0, high=3.0, free=True)}
    >>> def decay(state, t):
    ...     return state["x0"] * jnp.exp2(-state["k"] * t)   # halves every 1 / k
    >>> results = ParallelExecution(decay, GridSpace(state, n={"k": 3, "x0": 2}), 1.0).run()
    >>> grid = results.named()
    >>> grid.axes
    (Axis('k', 3), Axis('x0', 2))
    >>> grid.array
    Array([[1.  , 3.  ],
           [0.5 , 1.5 ],
           [0.25, 0.75]], dtype=float32)
"""

from ._engine import ModelError as ModelError
from ._executors import ParallelExecution as ParallelExecution
from ._sequential import SequentialExecution as SequentialExecution
from ._keys import point_key as point_key
from ._results import Results as Results
from ._optimize import OptimizeResults as OptimizeResults, optimize as optimize
from ._store import open_results as open_results
