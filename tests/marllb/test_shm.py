"""MARLLB shared-memory region: layout against the reference's byte offsets, round trips,
the frame-id protocol (torn and stale frames), permissions and cleanup."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import struct
import time
import uuid

import numpy as np
import pytest

from marllb_env import shm
from marllb_env.shm import LAYOUT, LAYOUT_END, SharedMemoryRegion

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")


def _name() -> str:
    return f"test_marllb_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def region():
    r = SharedMemoryRegion.create(_name())
    yield r
    r.close()


# --- layout ---------------------------------------------------------------------------
def test_layout_matches_reference_offsets():
    # reference marllb-upstream.md section 1.5 (computed from MARLLB's shm_layout.json)
    assert LAYOUT["n_as"][:2] == (42, 1)
    assert LAYOUT["msg_out_cache"][:2] == (43, 528)
    assert LAYOUT["msg_out_frames"] == (571, 528, 4)
    assert LAYOUT["res_as"] == (2683, 2048, 64)
    assert LAYOUT["msg_in_cache"][:2] == (133755, 776)
    assert LAYOUT["msg_in_frames"] == (134531, 776, 4)
    assert LAYOUT_END == 137635
    assert shm.SHM_SIZE == 1048576
    sizes = {"as_stat": 8, "tv_pair_f": 8, "reservoir_as": 2048, "alias": 8, "msg_out": 528, "msg_in": 776}
    for name, size in sizes.items():
        assert struct.calcsize(shm.STRUCT_FORMATS[name]) == size, name
    assert (shm.MSG_OUT.itemsize, shm.MSG_IN.itemsize, shm.RESERVOIR_AS.itemsize) == (528, 776, 2048)
    # field offsets inside the packed structs
    assert [shm.MSG_OUT.fields[f][1] for f in ("id", "ts", "b_header", "body")] == [0, 4, 8, 16]
    assert [shm.MSG_IN.fields[f][1] for f in ("id", "ts", "score", "weights")] == [0, 4, 8, 264]


def test_bitmap_is_msb_first():
    active = np.zeros(7, bool)
    active[[0, 2]] = True
    b = shm.bitmap_from_active(active)
    assert b == (1 << 63) | (1 << 61)
    # MARLLB parses it as a 64-char binary string: char i == '1' <=> server i active
    assert [i for i, c in enumerate(f"{b:064b}") if c == "1"] == [0, 2]
    assert np.flatnonzero(shm.active_from_bitmap(b)).tolist() == [0, 2]


# --- round trips against raw struct packing at the reference offsets --------------------
def test_msg_out_written_raw_is_read_back(region):
    """A frame packed with ``struct`` at the documented offsets (as VPP's C writes it) is read back."""
    n_flow_on = list(range(10, 17)) + [0] * 57
    body = [v for j in range(64) for v in (j, n_flow_on[j])]
    header = (1 << 63) | (1 << 62) | (1 << 57)  # bins 0, 1, 6
    frame = struct.pack(shm.STRUCT_FORMATS["msg_out"], 0, 12.5, header, *body)
    slot = 3 & shm.SHM_FRAME_MASK
    off = 571 + slot * 528
    with open(region.path, "r+b") as fh:  # an independent writer: plain file I/O
        fh.seek(off + 4)
        fh.write(frame[4:])
        fh.seek(2683 + 2 * 2048)  # bin 2's reservoir: fct then flow_duration
        fh.write(struct.pack("=" + "ff" * 256, *([1.0, 0.25] * 128 + [2.0, 0.75] * 128)))
        fh.seek(off)
        fh.write(struct.pack("=I", 3))
    f = region.read_msg_out()
    assert f is not None and f.id == 3 and f.ts == pytest.approx(12.5)
    assert f.active_bins.tolist() == [0, 1, 6]
    assert f.n_flow_on[:8].tolist() == [10, 11, 12, 13, 14, 15, 16, 0]
    assert f.as_index[:3].tolist() == [0, 1, 2]
    assert np.all(f.fct[2] == [1.0, 0.25]) and np.all(f.flow_duration[2] == [2.0, 0.75])
    assert np.all(f.fct[3] == 0)


def test_msg_in_readable_with_raw_struct(region):
    w = np.array([1.0, 1.5, 2.0, 0.0, 1.0])
    sid = region.write_msg_in(w, ts=4.0)
    with open(region.path, "rb") as fh:
        fh.seek(134531 + (sid & 3) * 776)
        vals = struct.unpack(shm.STRUCT_FORMATS["msg_in"], fh.read(776))
    assert vals[0] == sid and vals[1] == 4.0
    score = np.array(vals[2:66])
    assert np.allclose(score[:5], w) and np.all(score[5:] == 0)
    odd = np.array(vals[66::2])
    alias = np.array(vals[67::2])
    # the VPP rule: u ~ U[0,k) over the k active servers; keep bucket b if frac <= odd[b] else alias[b]
    active = np.flatnonzero(w > 0)
    k = active.size
    prob = np.zeros(k)
    for b, j in enumerate(active):
        prob[b] += odd[j] / k
        prob[alias[j]] += (1.0 - odd[j]) / k
    assert np.allclose(prob, w[active] / w[active].sum(), atol=1e-6)
    assert odd[3] == 1.0 and alias[3] == 0  # inactive bin keeps MARLLB's default (1.0, 0)


def test_round_trip_between_two_mappings(region):
    other = SharedMemoryRegion.attach(os.path.basename(region.path))
    try:
        other.write_reservoirs(np.full((4, 128, 2), 0.5), np.full((4, 128, 2), 1.5))
        sid = other.write_msg_out(np.array([3, 0, 7, 1]), np.ones(4, bool), ts=2.0)
        f = region.read_msg_out()
        assert f.id == sid and f.n_flow_on[:4].tolist() == [3, 0, 7, 1] and f.active_bins.tolist() == [0, 1, 2, 3]
        assert np.all(f.fct[:4] == 0.5) and np.all(f.flow_duration[:4] == 1.5)
        region.write_msg_in(np.array([1.0, 2.0, 1.0, 1.0]))
        m = other.read_msg_in()
        assert m.score[:4].tolist() == [1.0, 2.0, 1.0, 1.0] and m.ts == pytest.approx(2.0)
        assert other.read_msg_in() is None  # nothing newer
        assert other._in_cache["id"] == m.id  # copied to msg_in_cache, as VPP does
    finally:
        other.close()
    assert os.path.exists(region.path)  # attach does not unlink


def test_stale_frames_are_not_returned(region):
    assert region.read_msg_out() is None  # nothing published yet
    region.write_msg_out(np.array([1]), np.array([True]), ts=1.0)
    assert region.read_msg_out().id == 1
    assert region.read_msg_out() is None
    with pytest.raises(TimeoutError, match="newer than id 1"):
        region.read_msg_out(timeout=0.05)
    for t in range(2, 7):
        region.write_msg_out(np.array([t]), np.array([True]), ts=float(t))
    f = region.read_msg_out()
    assert f.id == 6 and f.n_flow_on[0] == 6  # the newest, skipping 2..5


def test_lapping_writer_is_detected(region):
    """A writer that laps the reader during its copy forces a re-read (white-box, deterministic)."""
    writer = SharedMemoryRegion.attach(os.path.basename(region.path))
    for t in range(1, 3):
        writer.write_msg_out(np.full(4, t), np.ones(4, bool), ts=float(t))
    real_res = region._res

    class LapWhileCopying:
        calls = 0

        def copy(self):
            LapWhileCopying.calls += 1
            if LapWhileCopying.calls == 1:  # 4 frames: the slot being copied is overwritten
                for t in range(3, 7):
                    writer.write_msg_out(np.full(4, t), np.ones(4, bool), ts=float(t))
            return real_res.copy()

    region._res = LapWhileCopying()
    try:
        f = region.read_msg_out()
    finally:
        region._res = real_res
        writer.close()
    assert LapWhileCopying.calls == 2
    assert f.id == 6 and np.all(f.n_flow_on[:4] == 6)


# --- torn frames with a real second process ---------------------------------------------
def _writer_killed_mid_frame(name: str, ready) -> None:
    r = SharedMemoryRegion.attach(name)
    for t in range(1, 6):
        r.write_msg_out(np.full(64, t), np.ones(64, bool), ts=float(t))
    # start frame 6 by hand: half of its body, then stall until killed
    slot = 6 & shm.SHM_FRAME_MASK
    start = LAYOUT["msg_out_frames"][0] + slot * shm.MSG_OUT.itemsize
    torn = np.zeros((), shm.MSG_OUT)
    torn["ts"] = 6.0
    torn["body"]["n_flow_on"] = 6
    r._mm[start + 4 : start + 264] = torn.tobytes()[4:264]
    ready.set()
    time.sleep(60)


@pytest.mark.integration
def test_writer_killed_mid_frame_never_yields_torn_frame(region):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_writer_killed_mid_frame, args=(os.path.basename(region.path), ready), daemon=True)
    p.start()
    try:
        assert ready.wait(30), "writer did not start"
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
    finally:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
    assert p.exitcode == -signal.SIGKILL
    # the slot really is torn: its first half says 6, its second half still says 2 (id 2's frame)
    raw = region._out_frames[6 & 3].copy()
    assert raw["id"] == 2 and raw["body"]["n_flow_on"][0] == 6 and raw["body"]["n_flow_on"][-1] == 2
    f = region.read_msg_out()
    assert f.id == 5 and f.ts == 5.0 and np.all(f.n_flow_on == 5)
    assert region.read_msg_out() is None


def _fast_writer(name: str, seconds: float, done) -> None:
    """A writer at ~10k frames/s (the data plane publishes every few ms): fast enough to lap a
    reader mid-copy, paced so that a reader on a loaded 2-core machine still gets a whole frame
    within its 1000 retries (an unpaced busy loop laps the 4-frame ring every few microseconds)."""
    r = SharedMemoryRegion.attach(name)
    active = np.ones(64, bool)
    end = time.monotonic() + seconds
    t = 0
    while time.monotonic() < end:
        t += 1
        r.write_msg_out(np.full(64, t % 2**31), active, ts=float(t))
        time.sleep(0.0001)
    done.value = t
    r.close()


@pytest.mark.integration
def test_concurrent_reader_sees_only_whole_increasing_frames(region):
    ctx = mp.get_context("spawn")
    done = ctx.Value("q", 0)
    p = ctx.Process(target=_fast_writer, args=(os.path.basename(region.path), 1.0, done), daemon=True)
    p.start()
    seen = []
    try:
        deadline = time.monotonic() + 30
        while p.is_alive() and time.monotonic() < deadline:
            f = region.read_msg_out()
            if f is not None:
                # a whole frame: every field carries the same sequence number
                assert np.all(f.n_flow_on == f.id) and f.ts == float(f.id), f.id
                seen.append(f.id)
    finally:
        p.join(10)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
    assert done.value > 100 and len(seen) > 10
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False))


# --- file handling ------------------------------------------------------------------------
def test_permissions_0600_even_with_open_umask():
    old = os.umask(0)
    try:
        r = SharedMemoryRegion.create(_name())
    finally:
        os.umask(old)
    try:
        assert r.mode == 0o600
        assert os.stat(r.path).st_mode & 0o777 == 0o600
        assert os.path.dirname(r.path) == "/dev/shm"
        assert os.path.getsize(r.path) == shm.SHM_SIZE
        assert r.n_as == 64
    finally:
        r.close()


def test_cleanup_and_errors():
    name = _name()
    r = SharedMemoryRegion.create(name, n_as=7)
    path = r.path
    with pytest.raises(FileExistsError):
        SharedMemoryRegion.create(name)
    a = SharedMemoryRegion.attach(name)
    assert a.n_as == 7
    a.close()
    r.close()
    r.close()  # idempotent
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match="closed"):
        r.read_msg_out()
    with pytest.raises(FileNotFoundError):
        SharedMemoryRegion.attach(name)
    for bad in ("", "a/b", "..", "x" * 300):
        with pytest.raises(ValueError, match="name"):
            SharedMemoryRegion.create(bad)
    with SharedMemoryRegion.create(name) as r2:
        with pytest.raises(ValueError, match="finite"):
            r2.write_msg_in(np.array([1.0, np.nan]))
        with pytest.raises(ValueError, match=">= 0"):
            r2.write_msg_in(np.array([1.0, -1.0]))
        with pytest.raises(ValueError, match="1..64"):
            r2.write_msg_in(np.ones(65))
    assert not os.path.exists(path)


def test_attach_rejects_short_file(tmp_path):
    p = tmp_path / "short"
    p.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="SHM_SIZE"):
        SharedMemoryRegion.attach("short", directory=str(tmp_path))
