"""The exact DES's array kernel (faas_gym.backends.des): heaps laid out as heapq's, windows equal to a
plain heapq/deque event loop bit for bit, compiled equal to interpreted, and the request books balance.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from faas_gym.backends import des
from faas_gym.backends.sim import SimBackend, SimConfig
from lwmecps_gym.core.compiled import grown
from tests.support.compiled import compiled_and_interpreted_outputs

# few distinct values so that ties (and ties in the first columns of a row) are common
_VALUES = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.5])


def _entries(h: np.ndarray, n: int) -> list:
    """The first ``n`` heap entries as heapq holds them: floats (1-D heap) or tuples (rows)."""
    return h[:n].tolist() if h.ndim == 1 else [tuple(r) for r in h[:n].tolist()]


_HEAPS = {  # (width, operations)
    "slot": (1, (des.slot_push, des.slot_pop, des.slot_replace, des.slot_heapify)),
    "request": (3, (des.request_push, des.request_pop, des.request_replace, des.request_heapify)),
}


def _entry(kind, row):
    return row[0] if kind == "slot" else row


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(sorted(_HEAPS)),
    ops=st.lists(st.tuples(st.sampled_from(["push", "push", "pop", "replace"]), st.tuples(_VALUES, _VALUES, _VALUES)),
                 max_size=60),
)  # fmt: skip
def test_array_heap_matches_heapq_values_and_layout(kind, ops):
    width, (push, pop, replace, _) = _HEAPS[kind]
    h = np.zeros(len(ops) + 1) if width == 1 else np.zeros((len(ops) + 1, width))
    n = 0
    ref: list = []
    for op, row in ops:
        item = _entry(kind, row)
        if op == "push":
            n = push(h, n, item)
            heapq.heappush(ref, item)
        elif not ref:
            continue
        elif op == "pop":
            top = _entries(h, 1)[0]
            n = pop(h, n)
            assert top == heapq.heappop(ref)
        else:
            top = _entries(h, 1)[0]
            replace(h, n, item)
            assert top == heapq.heapreplace(ref, item)
        assert _entries(h, n) == ref  # same layout, not only the same multiset


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(_HEAPS)), rows=st.lists(st.tuples(_VALUES, _VALUES, _VALUES), max_size=40))
def test_heapify_matches_heapq_layout(kind, rows):
    width, (*_, heapify) = _HEAPS[kind]
    items = [_entry(kind, r) for r in rows]
    h = np.array(items, dtype=np.float64).reshape((len(items), width) if width > 1 else len(items))
    heapify(h, len(items))
    heapq.heapify(items)
    assert _entries(h, len(items)) == items


@settings(max_examples=100, deadline=None)
@given(
    free=st.lists(_VALUES, max_size=30),
    n_cold=st.integers(0, 3),
    n_ready=st.integers(0, 6),
    conc=st.integers(1, 3),
)  # fmt: skip
def test_remove_slots_keeps_a_heap_of_the_right_entries(free, n_cold, n_ready, conc):
    cold_times = [5.0 + k for k in range(n_cold)]  # cold replicas' slots: conc entries at each ready time
    ref = free + [t for t in cold_times for _ in range(conc)]
    heapq.heapify(ref)
    h = np.array(ref + [0.0])
    removed = cold_times[: max(n_cold - 1, 0)]  # remove all but one cold replica ...
    for t in removed:
        for _ in range(conc):
            ref.remove(t)
    ref = sorted(ref)[min(n_ready * conc, len(ref)) :]  # ... and n_ready ready ones: their first-free slots
    n = des.remove_slots(h, len(h) - 1, np.array(removed), n_ready, conc)
    assert sorted(h[:n].tolist()) == ref
    assert all(h[(i - 1) // 2] <= h[i] for i in range(1, n))  # a valid min-heap


def _reference_window(arr, svc, t0, t1, slo, qcap, free, waiting, pending):
    """The DES window as a plain Python event loop on a heapq list, a deque and a heapq list of tuples."""
    dropped = 0
    for a, s in zip(arr.tolist(), svc.tolist(), strict=True):
        while waiting and free and free[0] <= a:
            wa, ws = waiting.popleft()
            f = free[0]
            st_ = f if f > wa else wa
            heapq.heapreplace(free, st_ + ws)
            heapq.heappush(pending, (st_ + ws, st_, wa))
        if not waiting and free and free[0] <= a:
            heapq.heapreplace(free, a + s)
            heapq.heappush(pending, (a + s, a, a))
        elif len(waiting) >= qcap:
            dropped += 1
        else:
            waiting.append((a, s))
    while waiting and free and free[0] < t1:
        wa, ws = waiting.popleft()
        f = free[0]
        st_ = f if f > wa else wa
        heapq.heapreplace(free, st_ + ws)
        heapq.heappush(pending, (st_ + ws, st_, wa))
    completed = over = 0
    resp = busy = 0.0
    while pending and pending[0][0] < t1:
        dep, st_, wa = heapq.heappop(pending)
        completed += 1
        resp += dep - wa
        over += dep - wa > slo
        busy += dep - (st_ if st_ > t0 else t0)
    for _dep, st_, _ in pending:  # heap storage order
        busy += t1 - (st_ if st_ > t0 else t0)
    return dropped, completed, resp, over, busy


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), slots=st.integers(0, 6), qcap=st.integers(0, 5), windows=st.integers(1, 8)
)
def test_window_equals_heapq_event_loop_bit_for_bit(seed, slots, qcap, windows):
    rng = np.random.default_rng(seed)
    free_ref = sorted(rng.choice([0.0, 0.5, 2.0], slots).tolist())
    free = np.zeros(max(slots, 1))
    free[:slots] = free_ref
    n_free = slots
    waiting, pending = deque(), []
    wq, wq_head, wq_len = np.zeros((1, 2)), 0, 0
    pend, n_pend = np.zeros((1, 3)), 0
    t0 = 0.0
    for _ in range(windows):
        dt = float(rng.choice([0.7, 3.0]))
        t1 = t0 + dt
        n = int(rng.integers(0, 25))
        # arrival and service times on a coarse grid: ties between departures, starts and arrivals
        arr = np.sort(t0 + np.round(rng.uniform(0.0, dt, n) * 4) / 4)
        arr = arr[arr < t1]
        svc = np.round(rng.exponential(1.0, arr.size) * 4) / 4 + 0.25
        ref = _reference_window(arr, svc, t0, t1, 1.0, qcap, free_ref, waiting, pending)
        wq, wq_head = des.grown_ring(wq, wq_head, wq_len, min(qcap, wq_len + arr.size))
        pend = grown(pend, n_pend + wq_len + arr.size)
        wq_head, wq_len, n_pend, *got = des.des_window(
            arr, svc, t0, t1, 1.0, qcap, free, n_free, wq, wq_head, wq_len, pend, n_pend
        )
        assert tuple(got) == ref
        assert _entries(free, n_free) == free_ref
        assert _entries(pend, n_pend) == pending
        ring = [tuple(wq[(wq_head + i) % wq.shape[0]]) for i in range(wq_len)]
        assert ring == list(waiting)
        t0 = t1


def _des_config(**kw) -> SimConfig:
    base = dict(
        model="des",
        workload={"kind": "orcbench", "model": 16, "mean_rps": 10.0},
        service_time={"kind": "orcbench", "model": 16, "max_s": 5.0},
        concurrency=2,
        queue_capacity=4,
        cold_start_s=3.0,
        keep_alive_s=10.0,
    )
    return SimConfig(**{**base, **kw})


def test_books_balance_over_a_long_run_with_drops_and_scaling():
    b = SimBackend(_des_config())
    b.reset(5)
    rng = np.random.default_rng(0)
    in_system = 0
    totals = np.zeros(4, dtype=np.int64)  # arrived, completed, dropped, windows with a queue
    for _ in range(3000):
        b.apply(int(rng.integers(0, 9)))
        b.advance(float(rng.choice([15.0, 2.5, 40.0])))
        m = b.observe()
        assert m.in_system == in_system + m.arrived - m.completed - m.dropped
        assert 0 <= m.queue_length <= 4 and m.queue_length <= m.in_system
        in_system = m.in_system
        totals += (m.arrived, m.completed, m.dropped, m.queue_length > 0)
    arrived, completed, dropped, queued = totals.tolist()
    assert arrived == completed + dropped + in_system
    assert dropped > 0 and queued > 0 and completed > 0  # the run crossed every branch


def test_fork_copies_the_des_state():
    def run(b, steps, rng):
        out = []
        for _ in range(steps):
            b.apply(int(rng.integers(0, 6)))
            b.advance(15.0)
            out.append(repr(b.observe()))
        return out

    a, b = SimBackend(_des_config()), SimBackend(_des_config())
    a.reset(3)
    b.reset(3)
    assert run(a, 50, np.random.default_rng(1)) == run(b, 50, np.random.default_rng(1))
    twin = a.fork()
    assert run(twin, 30, np.random.default_rng(9)) != []  # stepping the copy ...
    assert run(a, 50, np.random.default_rng(2)) == run(b, 50, np.random.default_rng(2))  # ... leaves a as b


def test_compiled_des_equals_interpreted():
    code = """
import hashlib
import numpy as np
from faas_gym.backends.sim import SimBackend, SimConfig
h = hashlib.sha256()
for conc, qcap in ((1, 0), (3, 6), (4, 200)):
    b = SimBackend(SimConfig(model="des", concurrency=conc, queue_capacity=qcap, cold_start_s=4.0,
                             workload={"kind": "orcbench", "model": 16, "mean_rps": 12.0}))
    b.reset(11)
    rng = np.random.default_rng(conc)
    for _ in range(300):
        b.apply(int(rng.integers(0, 7)))
        b.advance(float(rng.choice([15.0, 1.5])))
        h.update(repr(b.observe()).encode())
print(h.hexdigest())
"""
    compiled, interpreted = compiled_and_interpreted_outputs(code)
    assert compiled.strip() and compiled == interpreted
