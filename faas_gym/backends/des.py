"""The exact request-level DES window of :class:`faas_gym.backends.sim.SimBackend` over array state.

One source: the functions here are compiled with numba (:func:`lwmecps_gym.core.compiled.jit`, cached
on disk) and run interpreted where numba is missing or ``NUMBA_DISABLE_JIT=1``; both give the same
numbers bit for bit (``tests/faas/test_des_kernel.py``).

State (all float64, times in seconds):

* free-slot heap ``free`` ``(capacity,)``: the time each service slot is next free, a binary
  min-heap of its first ``n_free`` entries;
* waiting queue ``wq`` ``(capacity, 2)``: a FIFO ring of ``(arrival, service time)`` rows, ``wq_len``
  rows from row ``wq_head`` on (wrapping); the caller makes room for every arrival of the window;
* pending heap ``pend`` ``(capacity, 3)``: the ``(departure, start, arrival)`` rows of the requests
  in service, a binary min-heap of its first ``n_pend`` rows ordered like Python tuples
  (lexicographically: the first differing field decides).

Both heaps use one implementation of the algorithm of Python's :mod:`heapq` (``_heap``, instantiated
with each heap's entry accessors: the ``slot_*`` and ``request_*`` operations). A push puts the new
entry last and moves it up while it is smaller than its parent; a pop moves the last entry to the
root; a pop or a replace of the root then moves the smaller child up (the right one on ties) until a
leaf is free, and moves the root's new entry up from that leaf while it is smaller than its parent;
heapify does that from the last parent back to the root. Entries therefore sit where :mod:`heapq` puts the same values, so a sum over the heap in storage order adds
in the same order as one over a :mod:`heapq` list (``tests/faas/test_des_kernel.py`` checks the
layout against :mod:`heapq`).
"""

from __future__ import annotations

import numpy as np

from lwmecps_gym.core.compiled import jit


@jit
def _slot_get(h, i):
    return h[i]


@jit
def _slot_put(h, i, v):
    h[i] = v


@jit
def _request_get(h, i):
    return (h[i, 0], h[i, 1], h[i, 2])


@jit
def _request_put(h, i, v):
    h[i, 0] = v[0]
    h[i, 1] = v[1]
    h[i, 2] = v[2]


def _heap(get, put):
    """The heap operations (:mod:`heapq`'s algorithm, module docstring) for a heap array whose entry
    ``i`` is read by ``get(h, i)`` and written by ``put(h, i, entry)``: ``(push, pop, replace, heapify)``."""

    @jit
    def sift_toward_root(h, start, pos, item):
        # put item at pos, moving it up (not above start) while it is smaller than its parent
        while pos > start:
            parent = (pos - 1) >> 1
            p = get(h, parent)
            if item < p:
                put(h, pos, p)
                pos = parent
            else:
                break
        put(h, pos, item)

    @jit
    def sift_to_leaf(h, n, pos, item):
        # put item at pos of the heap of n entries: move the smaller child up (the right one on
        # ties) until a leaf is free, then move item up from there
        start = pos
        child = 2 * pos + 1
        while child < n:
            c = get(h, child)
            right = child + 1
            if right < n:
                r = get(h, right)
                if not c < r:
                    child = right
                    c = r
            put(h, pos, c)
            pos = child
            child = 2 * pos + 1
        sift_toward_root(h, start, pos, item)

    @jit
    def push(h, n, item):
        """Push ``item`` on the heap of ``n`` entries (``h`` has room for ``n + 1``); returns ``n + 1``."""
        sift_toward_root(h, 0, n, item)
        return n + 1

    @jit
    def pop(h, n):
        """Remove the root of the heap of ``n >= 1`` entries (read it first); returns ``n - 1``."""
        n -= 1
        if n > 0:
            sift_to_leaf(h, n, 0, get(h, n))
        return n

    @jit
    def replace(h, n, item):
        """Replace the root of the heap of ``n >= 1`` entries by ``item`` (heapq's ``heapreplace``)."""
        sift_to_leaf(h, n, 0, item)

    @jit
    def heapify(h, n):
        """Make the first ``n`` entries of ``h`` a heap in place (heapq's ``heapify``)."""
        for i in range(n // 2 - 1, -1, -1):
            sift_to_leaf(h, n, i, get(h, i))

    return push, pop, replace, heapify


#: the free-slot heap's operations (entries: float64 times of a ``(capacity,)`` array)
slot_push, slot_pop, slot_replace, slot_heapify = _heap(_slot_get, _slot_put)
#: the pending heap's operations (entries: ``(departure, start, arrival)`` rows of a ``(capacity, 3)`` array)
request_push, request_pop, request_replace, request_heapify = _heap(_request_get, _request_put)


@jit
def push_slots(free, n_free, times, conc):
    """Push ``conc`` slots free at each of ``times`` (in order) on the free-slot heap; returns the new
    size. ``free`` must have room for ``n_free + conc * len(times)`` entries."""
    for k in range(times.shape[0]):
        for _ in range(conc):
            n_free = slot_push(free, n_free, times[k])
    return n_free


@jit
def remove_slots(free, n_free, cold_removed, n_ready_removed, conc):
    """Remove slots from the free-slot heap of ``n_free`` entries; returns its new size.

    ``conc`` entries equal to each time of ``cold_removed`` (the ready times of removed cold-starting
    replicas), then the ``n_ready_removed * conc`` smallest entries (removed ready replicas give up
    the slots that free first: idle before busy). Ready times are removed largest first, so when a
    ready replica goes every replica left is ready: no cold-starting replica's entry is among the
    smallest. The heap's layout may differ from a :mod:`heapq` one with the same entries; the DES
    only reads its minimum, so equal entries in other places change nothing.
    """
    for k in range(cold_removed.shape[0]):
        r = cold_removed[k]
        left = conc
        i = 0
        while left > 0 and i < n_free:
            if free[i] == r:
                n_free -= 1
                free[i] = free[n_free]
                left -= 1
            else:
                i += 1
    if n_ready_removed == 0:
        slot_heapify(free, n_free)
        return n_free
    free[:n_free].sort()
    drop = min(n_ready_removed * conc, n_free)
    n_free -= drop
    free[:n_free] = free[drop : drop + n_free].copy()  # a sorted array is a valid heap
    return n_free


@jit
def _start(free, n_free, wq, head, pend, n_pend):
    """Start the head of the waiting queue on the first free slot; returns ``(new head, n_pend)``."""
    f = free[0]
    wa = wq[head, 0]
    ws = wq[head, 1]
    head += 1
    if head == wq.shape[0]:
        head = 0
    st = f if f > wa else wa
    slot_replace(free, n_free, st + ws)
    n_pend = request_push(pend, n_pend, (st + ws, st, wa))
    return head, n_pend


@jit
def des_window(arr, svc, t0, t1, slo_s, qcap, free, n_free, wq, wq_head, wq_len, pend, n_pend):
    """Simulate the window ``[t0, t1)``: work-conserving FCFS over the free slots with a FIFO queue of
    ``qcap`` places (an arrival that finds it full is dropped).

    Args:
        arr, svc: float64 ``(n,)`` arrival times in ``[t0, t1)`` (sorted) and their service times.
        t0, t1: window bounds (s); slo_s: the response-time objective (s); qcap: queue capacity.
        free, n_free, wq, wq_head, wq_len, pend, n_pend: the state (module docstring), updated in place;
            ``wq`` must have room for ``min(qcap, wq_len + n)`` rows and ``pend`` for
            ``n_pend + wq_len + n`` rows.

    Returns:
        ``(wq_head, wq_len, n_pend, dropped, completed, resp_sum_s, over_slo, busy_s)``: the new queue
        head, queue length and pending count; the window's drops, completions, sum of completed
        response times, completions slower than ``slo_s``, and busy slot-seconds in the window.
    """
    cap = wq.shape[0]
    dropped = 0
    for i in range(arr.shape[0]):
        a = arr[i]
        while wq_len > 0 and n_free > 0 and free[0] <= a:
            wq_head, n_pend = _start(free, n_free, wq, wq_head, pend, n_pend)
            wq_len -= 1
        if wq_len == 0 and n_free > 0 and free[0] <= a:
            s = svc[i]
            slot_replace(free, n_free, a + s)
            n_pend = request_push(pend, n_pend, (a + s, a, a))
        elif wq_len >= qcap:
            dropped += 1
        else:
            tail = wq_head + wq_len
            if tail >= cap:
                tail -= cap
            wq[tail, 0] = a
            wq[tail, 1] = svc[i]
            wq_len += 1
    while wq_len > 0 and n_free > 0 and free[0] < t1:
        wq_head, n_pend = _start(free, n_free, wq, wq_head, pend, n_pend)
        wq_len -= 1
    completed = 0
    resp_sum = 0.0
    over = 0
    busy = 0.0
    while n_pend > 0 and pend[0, 0] < t1:
        dep = pend[0, 0]
        st = pend[0, 1]
        wa = pend[0, 2]
        n_pend = request_pop(pend, n_pend)
        completed += 1
        r = dep - wa
        resp_sum += r
        if r > slo_s:
            over += 1
        busy += dep - (st if st > t0 else t0)
    for k in range(n_pend):  # in heap storage order, as a loop over a heapq list
        st = pend[k, 1]
        busy += t1 - (st if st > t0 else t0)
    return wq_head, wq_len, n_pend, dropped, completed, resp_sum, over, busy


def warm_up() -> None:
    """Load (or compile) the compiled kernels now, not at the first window: the first load of a
    process also starts numba's compiler context (about 0.4 s), a one-off cost that would otherwise
    land in the first simulated step. A no-op in effect when interpreted."""
    free = np.zeros(1)
    des_window(np.zeros(0), np.zeros(0), 0.0, 1.0, 1.0, 0, free, 1, np.zeros((1, 2)), 0, 0, np.zeros((1, 3)), 0)
    remove_slots(free, push_slots(free, 0, np.zeros(1), 1), np.zeros(0), 1, 1)


def grown_ring(wq: np.ndarray, head: int, length: int, rows: int) -> tuple[np.ndarray, int]:
    """The ring ``wq`` (``length`` rows from ``head``) with room for ``rows`` rows: ``(ring, head)``,
    unrolled to start at row 0 when it had to grow."""
    cap = wq.shape[0]
    if cap >= rows:
        return wq, head
    out = np.zeros((max(rows, 2 * cap, 8), 2))
    idx = (head + np.arange(length)) % cap if cap else np.arange(0)
    out[:length] = wq[idx]
    return out, 0
