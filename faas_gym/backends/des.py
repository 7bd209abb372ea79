"""The exact request-level DES window of :class:`faas_gym.backends.sim.SimBackend` over array state.

One source: the functions here are compiled with numba (:func:`lwmecps_gym.core.compiled.jit`, cached
on disk) and run interpreted where numba is missing or ``NUMBA_DISABLE_JIT=1``; both give the same
numbers bit for bit (``tests/faas/test_des_kernel.py``).

State (all float64, times in seconds):

* free-slot heap ``free`` ``(capacity, 1)``: the time each service slot is next free, a binary
  min-heap of its first ``n_free`` rows;
* waiting queue ``wq`` ``(capacity, 2)``: a FIFO ring of ``(arrival, service time)`` rows, ``wq_len``
  rows from row ``wq_head`` on (wrapping); the caller makes room for every arrival of the window;
* pending heap ``pend`` ``(capacity, 3)``: the ``(departure, start, arrival)`` rows of the requests
  in service, a binary min-heap of its first ``n_pend`` rows ordered lexicographically.

The heaps are binary heaps with rows compared lexicographically (like Python tuples) and the same
algorithm as Python's :mod:`heapq`: a push appends and moves the new row up while it is smaller than
its parent; a pop moves the last row to the root; a pop or a replace of the root then walks the
root's row down along the smaller child (the right one on ties) to a leaf and moves it back up while
it is smaller than its parent; heapify does that from the last parent back to the root. Rows
therefore sit where :mod:`heapq` would put the same tuples, so a sum over the heap's rows in
storage order adds in the same order as one over a :mod:`heapq` list.
"""

from __future__ import annotations

import numpy as np

from lwmecps_gym.core.compiled import jit


@jit(inline=True)
def _row_lt(h, i, j):
    """Row ``i`` of ``h`` < row ``j`` lexicographically (tuple order: first differing column decides)."""
    for c in range(h.shape[1]):
        a = h[i, c]
        b = h[j, c]
        if a != b:
            return a < b
    return False


@jit(inline=True)
def _swap(h, i, j):
    for c in range(h.shape[1]):
        a = h[i, c]
        h[i, c] = h[j, c]
        h[j, c] = a


@jit
def sift_toward_root(h, start, pos):
    """Move row ``pos`` of heap ``h`` up (not above ``start``) while it is smaller than its parent."""
    while pos > start:
        parent = (pos - 1) >> 1
        if _row_lt(h, pos, parent):
            _swap(h, pos, parent)
            pos = parent
        else:
            break


@jit
def sift_to_leaf(h, n, pos):
    """Restore the heap below ``pos`` (of ``n`` rows): walk row ``pos`` down along the smaller child
    to a leaf, then up while it is smaller than its parent (heapq's bottom-up variant)."""
    start = pos
    child = 2 * pos + 1
    while child < n:
        right = child + 1
        if right < n and not _row_lt(h, child, right):
            child = right
        _swap(h, pos, child)
        pos = child
        child = 2 * pos + 1
    sift_toward_root(h, start, pos)


@jit
def heap_push(h, n, row):
    """Push ``row`` (a sequence of ``h.shape[1]`` floats) on the heap of ``n`` rows; returns ``n + 1``.
    ``h`` must have more than ``n`` rows."""
    for c in range(h.shape[1]):
        h[n, c] = row[c]
    sift_toward_root(h, 0, n)
    return n + 1


@jit
def heap_pop(h, n):
    """Remove the root of the heap of ``n >= 1`` rows (read it first: ``h[0]``); returns ``n - 1``."""
    n -= 1
    if n > 0:
        for c in range(h.shape[1]):
            h[0, c] = h[n, c]
        sift_to_leaf(h, n, 0)
    return n


@jit
def heap_replace(h, n, row):
    """Replace the root of the heap of ``n >= 1`` rows by ``row`` (heapq's ``heapreplace``)."""
    for c in range(h.shape[1]):
        h[0, c] = row[c]
    sift_to_leaf(h, n, 0)


@jit
def heapify(h, n):
    """Make the first ``n`` rows of ``h`` a heap in place (heapq's ``heapify``)."""
    for i in range(n // 2 - 1, -1, -1):
        sift_to_leaf(h, n, i)


@jit
def push_slots(free, n_free, times, conc):
    """Push ``conc`` slots free at each of ``times`` (in order) on the free-slot heap; returns the new
    size. ``free`` must have room for ``n_free + conc * len(times)`` rows."""
    for k in range(times.shape[0]):
        for _ in range(conc):
            n_free = heap_push(free, n_free, (times[k],))
    return n_free


@jit
def _start(free, n_free, wq, head, pend, n_pend):
    """Start the head of the waiting queue on the first free slot; returns ``(new head, n_pend)``."""
    f = free[0, 0]
    wa = wq[head, 0]
    ws = wq[head, 1]
    head += 1
    if head == wq.shape[0]:
        head = 0
    st = f if f > wa else wa
    heap_replace(free, n_free, (st + ws,))
    n_pend = heap_push(pend, n_pend, (st + ws, st, wa))
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
        while wq_len > 0 and n_free > 0 and free[0, 0] <= a:
            wq_head, n_pend = _start(free, n_free, wq, wq_head, pend, n_pend)
            wq_len -= 1
        if wq_len == 0 and n_free > 0 and free[0, 0] <= a:
            s = svc[i]
            heap_replace(free, n_free, (a + s,))
            n_pend = heap_push(pend, n_pend, (a + s, a, a))
        elif wq_len >= qcap:
            dropped += 1
        else:
            tail = wq_head + wq_len
            if tail >= cap:
                tail -= cap
            wq[tail, 0] = a
            wq[tail, 1] = svc[i]
            wq_len += 1
    while wq_len > 0 and n_free > 0 and free[0, 0] < t1:
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
        n_pend = heap_pop(pend, n_pend)
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


def grown(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with at least ``rows`` rows (doubling; the first rows copied), or ``a`` itself if it has them."""
    if a.shape[0] >= rows:
        return a
    out = np.zeros((max(rows, 2 * a.shape[0], 8), a.shape[1]))
    out[: a.shape[0]] = a
    return out


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
