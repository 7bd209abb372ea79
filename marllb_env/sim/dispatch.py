"""Dispatch-mode helpers: the modes' names, a Vose alias table and a Maglev lookup table.

Dispatch modes (how a load balancer picks the server of a new flow; ``h`` is the
flow's 5-tuple hash, uniform on ``[0, 2**62)`` and drawn on the workload stream):

============  =========================================================================
mode          rule
============  =========================================================================
``sed``       argmin_j (n_flow_on_j + 1) / w_j over active servers (LB-local counts; MARLLB
              ``LB_SED`` with the agent's weights ``w``); ties broken uniformly at random
``sed2``      SED between two distinct servers chosen by ``h`` (power of two, ``LB_SED2``)
``lsq``       argmin_j n_flow_on_j (local shortest queue, ``LB_LSQ``), random ties
``lsq2``      LSQ between two servers chosen by ``h`` (``LB_LSQ2``)
``wcmp``      P(j) proportional to w_j, Vose alias sampling driven by ``h`` (``LB_ALIAS``)
``ecmp``      active[h mod n_active] (stateless hash)
``maglev``    Maglev lookup table (prime size, equal weights) indexed by h mod M
``random``    uniform over active servers (system stream)
``gsq``       oracle: argmin_j (N_j + 1) / w_j with N_j the **global true** flows in system
              at server j (all LBs, incl. backlog)
``lwl``       oracle least-work-left: argmin_j W_j / c_j, W_j true unfinished work (CPU-s),
              c_j capacity (CPU-s/s)
``srt``       oracle shortest remaining time: argmin_j of the new job's completion time under
              PS given the true remaining sizes at j (no further arrivals)
============  =========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

DISPATCH_MODES: tuple[str, ...] = (
    "sed",
    "sed2",
    "lsq",
    "lsq2",
    "wcmp",
    "ecmp",
    "maglev",
    "random",
    "gsq",
    "lwl",
    "srt",
)

#: Modes that use the weights set by ``set_weights``.
WEIGHTED_MODES = frozenset({"sed", "sed2", "wcmp", "gsq"})

#: Modes that read information a real load balancer does not have.
ORACLE_MODES = frozenset({"gsq", "lwl", "srt"})

HASH_BITS = 62


def build_alias(weights: Sequence[float]) -> tuple[list[float], list[int]]:
    """Vose's alias method (Vose 1991): O(n) build, O(1) sampling.

    Sample: ``i = uniform index``; return ``i`` if ``u < prob[i]`` else ``alias[i]``.

    Args:
        weights: non-negative weights, not all zero.

    Returns:
        ``(prob, alias)`` lists of length ``len(weights)``.

    Raises:
        ValueError: if a weight is negative or all are zero.
    """
    n = len(weights)
    total = float(sum(weights))
    if n == 0 or total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"alias weights must be non-negative and not all zero, got {list(weights)!r}")
    scaled = [w * n / total for w in weights]
    prob = [0.0] * n
    alias = list(range(n))
    small = [i for i, p in enumerate(scaled) if p < 1.0]
    large = [i for i, p in enumerate(scaled) if p >= 1.0]
    while small and large:
        s = small.pop()
        g = large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    for i in large + small:
        prob[i] = 1.0
    return prob, alias


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a fixed 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


@lru_cache(maxsize=64)
def maglev_table(servers: tuple[int, ...], size: int = 65537) -> tuple[int, ...]:
    """Maglev lookup table (Eisenbud et al., NSDI 2016, Pseudocode 1).

    Each server ``b`` has ``offset = h1(b) mod M`` and ``skip = h2(b) mod (M - 1) + 1``;
    its preference list is ``(offset + k * skip) mod M``. Servers take turns claiming
    their next preferred empty slot until the table is full, so every server owns
    ``M / n`` slots (+-1) and removing a server moves few other entries.

    Args:
        servers: server ids (backend names), hashed with splitmix64.
        size: table size ``M``; must be prime so every skip is a full cycle.

    Returns:
        tuple of ``M`` server ids.
    """
    m = size
    if m < len(servers) or any(m % p == 0 for p in range(2, int(m**0.5) + 1)) or m < 2:
        raise ValueError(f"maglev table size must be a prime >= the number of servers, got {size}")
    if not servers:
        raise ValueError("maglev table needs at least one server")
    offs = [_mix64(2 * b + 1) % m for b in servers]
    skips = [_mix64(2 * b + 2) % (m - 1) + 1 for b in servers]
    nxt = [0] * len(servers)
    table = [-1] * m
    filled = 0
    while True:
        for i, b in enumerate(servers):
            c = (offs[i] + nxt[i] * skips[i]) % m
            while table[c] >= 0:
                nxt[i] += 1
                c = (offs[i] + nxt[i] * skips[i]) % m
            table[c] = b
            nxt[i] += 1
            filled += 1
            if filled == m:
                return tuple(table)
