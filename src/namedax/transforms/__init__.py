"""vmap, pmap, scan/fold/map and collectives by axis name (re-exported by `namedax`)."""
