"""The simulation core of GaisNet: the epoch as a sequence of small functions on numpy arrays.

No Gymnasium here, and no model workers: the shells (:class:`gaisnet_env.env.GaisNetEnv`) call the
workers (training, feedback buffers, accuracy tables) and hand their results to these functions. Arrays
are per edge (``(E,)``, ``(E, k)``; per request kind ``(2, E)``, row 0 classify, row 1 generate).

A leading env axis (``(N, E)``, ``(N, 2, E)``) already works in the elementwise pieces, bit for bit per
copy (``tests/test_core_batch.py``): :func:`actions.mask`, :func:`faults.lost_ops`, :func:`ops.abort`,
:func:`latency.op_share`, :func:`latency.drain_wait`, :func:`latency.queue_inputs`,
:func:`latency.request_latency`, :func:`requests.serve`, :func:`requests.work`, :func:`reward.cell_figures`,
:func:`reward.edge_reward`. The reductions over edges to floats (metrics, energy totals, reward, the
observation) have batched twins in :mod:`batch`, bit for bit the same per copy; with them the native vector
env steps its copies' quiet epochs over ``(N, E)`` arrays (:mod:`gaisnet_env.quiet_steps`). The RNG draws
stay per copy (each copy's own generator) and the per-event bookkeeping of ops per env.

One epoch, in order (the modules that compute it)::

    action ──> actions      parse, feasibility mask, fallback of masked choices
    faults ──> faults       multipliers in force; ops lost and queues dropped at the start
           ──> ops          cost and bookkeeping of the ops started (the workers train them)
           ──> requests     arrivals (Poisson, RNG), serving tier, compute work     <- requests generated
           ──> latency      edge and cloud queues, network legs, latency, SLA
           ──> energy       energy, carbon, traffic, batteries                      <- cost charged
           ──> reward       metrics, reward terms, per-cell figures
           ──> feedback     labels returned to the edges (RNG), operator view
           ──> ops          advance in flight; commit bookkeeping (workers commit)  <- weights change
           ──> info         the step's info dict; observation: the next observation

``figures`` holds the static cost figures of a scenario, ``state`` the state and its reset value,
``layout`` the names and indices shared with the shells.
"""
