"""MARLLB's shared-memory interface between the data plane (VPP plugin) and the agent.

The region is a file under ``/dev/shm`` (``shm_vip_{VIP_ID}`` in MARLLB) mapped by both
sides. Its layout is MARLLB's, byte for byte, so the real VPP plugin (``src/vpp/lb/shm.h``,
generated from ``src/lb/shm_layout.json`` in ``ZhiyuanYaoJ/MARLLB``) can attach to a
region this module created, and this module can attach to one the plugin created.
Source of every constant and offset: ../docs/marllb_multi_agent.md, table "Shared-memory
layout", which reproduces the reference's section 1.5.

All structs are C ``__attribute__((packed))``; numbers are in the host's native byte order
(both sides run on the same machine).

=================  ======  ========  =================================================
field              offset  size (B)  content
=================  ======  ========  =================================================
(unused)           0       42        ``SHM_OFFSET`` bytes before the layout
``n_as``           42      1         u8, maximum number of servers (``SHM_N_BIN``)
``msg_out_cache``  43      528       data plane's working copy of ``msg_out``
``msg_out_frames`` 571     4 x 528   ring written by the data plane, read by the agent
``res_as``         2683    64 x 2048 per-server reservoirs: 128 FCT + 128 flow-duration
                                     ``(t, v)`` float32 pairs, overwritten in place
``msg_in_cache``   133755  776       data plane's copy of the newest ``msg_in``
``msg_in_frames``  134531  4 x 776   ring written by the agent, read by the data plane
=================  ======  ========  =================================================

``msg_out`` = {u32 id; f32 ts; u64 b_header; as_stat body[64]} with
``as_stat`` = {u32 as_index; i32 n_flow_on}; ``b_header`` is the active-server bitmap,
most significant bit = server bin 0. ``msg_in`` = {u32 id; f32 ts; f32 score[64];
alias weights[64]} with ``alias`` = {f32 odd; u32 alias}: ``score`` holds the weights that
SED divides by, ``weights`` a Vose alias table for weighted random dispatch (WCMP).

Frame protocol (seqlock-like, MARLLB's): the writer of message number ``id`` (1, 2, ...)
writes the whole body of frame ``id & 3`` and **then** the ``id`` field. A reader takes the
frame with the highest id. A frame whose write was interrupted (writer killed mid-frame)
still carries its *old* id, four behind the newest, so it is never the highest; and a
frame can only be overwritten after three newer ids have been published, so a reader
that copies frame ``m`` and afterwards sees no id ``>= m + 3`` (and ``m`` still in place)
knows its copy is whole. This relies on stores becoming visible in program order (x86
TSO, the platform VPP runs on); Python cannot issue memory fences.

The reservoirs are not framed: as in MARLLB the data plane overwrites single ``(t, v)``
slots in place, and a reader sees a sample of samples.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
import time
from dataclasses import dataclass

import numpy as np

# --- constants of MARLLB's shm.h -------------------------------------------------------
SHM_SIZE = 1_048_576
SHM_OFFSET = 42
SHM_N_BIN = 64
SHM_N_FRAME = 4
SHM_FRAME_MASK = 3
VIP_ID = 1
SHM_UPT_DT = 0.2  #: seconds between two ``msg_out`` frames published by VPP
RESERVOIR_N_BIN = 128
SHM_DIR = "/dev/shm"
DEFAULT_NAME = f"shm_vip_{VIP_ID}"

# --- packed struct dtypes (numpy structured dtypes without alignment are packed) ---------
AS_STAT = np.dtype([("as_index", "=u4"), ("n_flow_on", "=i4")])
TV_PAIR_F = np.dtype([("t", "=f4"), ("v", "=f4")])
RESERVOIR_AS = np.dtype([("fct", TV_PAIR_F, (RESERVOIR_N_BIN,)), ("flow_duration", TV_PAIR_F, (RESERVOIR_N_BIN,))])
ALIAS = np.dtype([("odd", "=f4"), ("alias", "=u4")])
MSG_OUT = np.dtype([("id", "=u4"), ("ts", "=f4"), ("b_header", "=u8"), ("body", AS_STAT, (SHM_N_BIN,))])
MSG_IN = np.dtype([("id", "=u4"), ("ts", "=f4"), ("score", "=f4", (SHM_N_BIN,)), ("weights", ALIAS, (SHM_N_BIN,))])

#: ``struct`` formats of the same structs (what MARLLB's Python side unpacks), for tools and tests.
STRUCT_FORMATS = {
    "as_stat": "=Ii",
    "tv_pair_f": "=ff",
    "reservoir_as": "=" + "ff" * (2 * RESERVOIR_N_BIN),
    "alias": "=fI",
    "msg_out": "=IfQ" + "Ii" * SHM_N_BIN,
    "msg_in": "=If" + "f" * SHM_N_BIN + "fI" * SHM_N_BIN,
}


def _build_layout() -> dict[str, tuple[int, int, int]]:
    """Field name -> (offset, element size, count), in MARLLB's order."""
    fields = [
        ("n_as", 1, 1),
        ("msg_out_cache", MSG_OUT.itemsize, 1),
        ("msg_out_frames", MSG_OUT.itemsize, SHM_N_FRAME),
        ("res_as", RESERVOIR_AS.itemsize, SHM_N_BIN),
        ("msg_in_cache", MSG_IN.itemsize, 1),
        ("msg_in_frames", MSG_IN.itemsize, SHM_N_FRAME),
    ]
    out, off = {}, SHM_OFFSET
    for name, size, count in fields:
        out[name] = (off, size, count)
        off += size * count
    return out


#: Field name -> ``(byte offset, element size, element count)``.
LAYOUT = _build_layout()
#: First byte after the layout (137,635); the file is ``SHM_SIZE`` bytes.
LAYOUT_END = LAYOUT["msg_in_frames"][0] + MSG_IN.itemsize * SHM_N_FRAME

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def bitmap_from_active(active: np.ndarray) -> int:
    """``b_header`` for a boolean mask over the 64 bins (bit 63 = bin 0, MARLLB's MSB-first order)."""
    a = np.zeros(SHM_N_BIN, dtype=bool)
    mask = np.asarray(active, dtype=bool).reshape(-1)
    if mask.size > SHM_N_BIN:
        raise ValueError(f"active mask has {mask.size} entries; at most SHM_N_BIN={SHM_N_BIN}")
    a[: mask.size] = mask
    value = 0
    for j in np.flatnonzero(a):
        value |= 1 << (SHM_N_BIN - 1 - int(j))
    return value


def active_from_bitmap(b_header: int) -> np.ndarray:
    """Boolean mask ``(64,)`` of the active bins encoded in ``b_header`` (bit 63 = bin 0)."""
    b = int(b_header)
    return np.array([(b >> (SHM_N_BIN - 1 - j)) & 1 == 1 for j in range(SHM_N_BIN)], dtype=bool)


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table over the servers with positive weight.

    As the VPP plugin reads it (``LB_ALIAS`` in ``node.c``): draw ``u ~ U[0, k)`` over the
    ``k`` active servers, bucket ``b = floor(u)``; keep ``b`` if ``u - b <= odd[b]``, else take
    ``alias[b]``. ``alias`` values are *positions among the active servers* (0..k-1), stored
    at each active server's bin; inactive bins hold ``(1.0, 0)``, MARLLB's default.

    Args:
        weights: float array ``(n,)``, ``n <= 64``, finite and ``>= 0``; 0 marks an inactive server.

    Returns:
        ``(odd, alias)``: float32 ``(n,)`` in [0, 1] and uint32 ``(n,)``.

    Raises:
        ValueError: negative or non-finite weights.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    odd = np.ones(w.size, dtype=np.float32)
    alias = np.zeros(w.size, dtype=np.uint32)
    pos = np.flatnonzero(w > 0)
    k = pos.size
    if k == 0:
        return odd, alias
    p = w[pos] * k / w[pos].sum()
    small = [i for i in range(k) if p[i] < 1.0]
    large = [i for i in range(k) if p[i] >= 1.0]
    prob = np.ones(k)
    al = np.arange(k)
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], al[s] = p[s], g
        p[g] -= 1.0 - p[s]
        (small if p[g] < 1.0 else large).append(g)
    # leftovers are 1 up to rounding: keep them
    odd[pos] = prob.astype(np.float32)
    alias[pos] = al.astype(np.uint32)
    return odd, alias


@dataclass(frozen=True)
class MsgOutFrame:
    """One complete ``msg_out`` frame plus a copy of the reservoirs read right after it.

    Attributes:
        id: sequence id (1, 2, ...).
        ts: data-plane time of the frame, seconds (float32 in shm).
        active: bool ``(64,)``, active server bins (from ``b_header``).
        as_index: uint32 ``(64,)``.
        n_flow_on: int32 ``(64,)``, established flows per bin as counted by this LB.
        fct: float32 ``(64, 128, 2)``, FCT reservoir ``(t, v)`` pairs in seconds.
        flow_duration: float32 ``(64, 128, 2)``, flow-duration reservoir ``(t, v)`` pairs in seconds.
    """

    id: int
    ts: float
    active: np.ndarray
    as_index: np.ndarray
    n_flow_on: np.ndarray
    fct: np.ndarray
    flow_duration: np.ndarray

    @property
    def active_bins(self) -> np.ndarray:
        """Indices of the active bins, ascending (MARLLB's ``active_as``)."""
        return np.flatnonzero(self.active)


@dataclass(frozen=True)
class MsgInFrame:
    """One complete ``msg_in`` frame: ``score`` float32 ``(64,)`` and the alias table."""

    id: int
    ts: float
    score: np.ndarray
    odd: np.ndarray
    alias: np.ndarray


class SharedMemoryRegion:
    """A mapped MARLLB shared-memory file (agent side and data-plane side).

    Use :meth:`create` (new file, mode 0600, owner unlinks it on :meth:`close`) or
    :meth:`attach` (existing file, e.g. one the VPP plugin created). Agent side:
    :meth:`read_msg_out`, :meth:`write_msg_in`. Data-plane side (the emulator, tests):
    :meth:`write_msg_out`, :meth:`write_reservoirs`, :meth:`read_msg_in`.

    A region is used by one thread per role; two processes may share it (that is the point).
    """

    def __init__(self, path: str, fd: int, owner: bool):
        self.path = path
        self.owner = owner
        self._fd = fd
        self._mm: mmap.mmap | None = mmap.mmap(fd, SHM_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        o = LAYOUT
        self._n_as = np.ndarray((1,), np.uint8, self._mm, o["n_as"][0])
        self._out_cache = np.ndarray((), MSG_OUT, self._mm, o["msg_out_cache"][0])
        self._out_frames = np.ndarray((SHM_N_FRAME,), MSG_OUT, self._mm, o["msg_out_frames"][0])
        self._res = np.ndarray((SHM_N_BIN,), RESERVOIR_AS, self._mm, o["res_as"][0])
        self._in_cache = np.ndarray((), MSG_IN, self._mm, o["msg_in_cache"][0])
        self._in_frames = np.ndarray((SHM_N_FRAME,), MSG_IN, self._mm, o["msg_in_frames"][0])
        self._last_out_id = 0
        self._last_in_id = 0
        self._out_id = self._max_id(self._out_frames)  # continue an existing sequence on attach
        self._in_id = self._max_id(self._in_frames)
        self._last_ts = 0.0

    # --- construction -----------------------------------------------------------------
    @staticmethod
    def _path(name: str, directory: str) -> str:
        if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
            raise ValueError(f"name must match {_NAME_RE.pattern} (a file name, no '/'), got {name!r}")
        return os.path.join(directory, name)

    @classmethod
    def create(cls, name: str = DEFAULT_NAME, *, directory: str = SHM_DIR, n_as: int = SHM_N_BIN) -> SharedMemoryRegion:
        """Create ``{directory}/{name}`` (mode 0600, ``SHM_SIZE`` zero bytes) and map it.

        Args:
            name: file name (MARLLB's VPP plugin uses ``shm_vip_1``).
            directory: ``/dev/shm`` (POSIX shared memory on Linux).
            n_as: value of the ``n_as`` byte (maximum number of servers, 1..64).

        Raises:
            FileExistsError: the file exists (attach to it, or remove it first).
            ValueError: bad name or ``n_as``.
        """
        if not (isinstance(n_as, int) and 1 <= n_as <= SHM_N_BIN):
            raise ValueError(f"n_as must be an int in [1, {SHM_N_BIN}], got {n_as!r}")
        path = cls._path(name, directory)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # independent of the umask
            os.ftruncate(fd, SHM_SIZE)
            region = cls(path, fd, owner=True)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        region._n_as[0] = n_as
        return region

    @classmethod
    def attach(cls, name: str = DEFAULT_NAME, *, directory: str = SHM_DIR) -> SharedMemoryRegion:
        """Map an existing region (created by :meth:`create` or by the data plane).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is smaller than ``SHM_SIZE``.
        """
        path = cls._path(name, directory)
        fd = os.open(path, os.O_RDWR)
        size = os.fstat(fd).st_size
        if size < SHM_SIZE:
            os.close(fd)
            raise ValueError(f"{path} has {size} bytes; a MARLLB region has SHM_SIZE={SHM_SIZE}")
        return cls(path, fd, owner=False)

    @property
    def mode(self) -> int:
        """Permission bits of the file (0o600 when created here)."""
        return stat.S_IMODE(os.fstat(self._fd).st_mode)

    @property
    def n_as(self) -> int:
        return int(self._n_as[0])

    @property
    def closed(self) -> bool:
        return self._mm is None

    def close(self, unlink: bool | None = None) -> None:
        """Unmap; the owner (creator) also removes the file unless ``unlink=False``."""
        if self._mm is None:
            return
        for attr in ("_n_as", "_out_cache", "_out_frames", "_res", "_in_cache", "_in_frames"):
            setattr(self, attr, None)
        self._mm.close()
        self._mm = None
        os.close(self._fd)
        if self.owner if unlink is None else unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> SharedMemoryRegion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _check_open(self) -> None:
        if self._mm is None:
            raise ValueError(f"region {self.path} is closed")

    # --- ring helpers -----------------------------------------------------------------
    @staticmethod
    def _ids(frames: np.ndarray) -> np.ndarray:
        return frames["id"].astype(np.int64)  # a copy: one load per id

    @classmethod
    def _max_id(cls, frames: np.ndarray) -> int:
        ids = cls._ids(frames)
        ok = ids[(ids & SHM_FRAME_MASK) == np.arange(SHM_N_FRAME)]  # id n lives in slot n & 3
        return int(ok.max()) if ok.size else 0

    def _read_newest(self, frames: np.ndarray, newer_than: int, with_res: bool):
        """Copy the newest whole frame with id > newer_than; None if there is none."""
        for _ in range(1000):
            m = self._max_id(frames)
            if m <= newer_than:
                return None
            k = m & SHM_FRAME_MASK
            copy = frames[k].copy()
            res = self._res.copy() if with_res else None
            after = self._ids(frames)
            if int(after[k]) == m and int(after.max()) < m + SHM_FRAME_MASK:
                return copy, res
            # the writer lapped us while copying: try again with the newer frames
        raise RuntimeError(f"could not read a consistent frame from {self.path}: the writer is too fast")

    def _write_frame(self, field: str, msg: np.ndarray, seq: int) -> None:
        """Write ``msg`` into frame ``seq & 3`` of ring ``field``: body first, the id last (the commit)."""
        assert self._mm is not None
        size = msg.dtype.itemsize
        start = LAYOUT[field][0] + (seq & SHM_FRAME_MASK) * size
        self._mm[start + 4 : start + size] = msg.tobytes()[4:]
        struct.pack_into("=I", self._mm, start, seq)

    # --- agent side -------------------------------------------------------------------
    def read_msg_out(self, *, timeout: float | None = None, poll_s: float = 0.0005) -> MsgOutFrame | None:
        """The newest whole ``msg_out`` frame newer than the last one this object returned.

        Never returns a torn frame (see the module docstring) nor one older than, or equal
        to, a frame already returned.

        Args:
            timeout: ``None``: do not wait, return ``None`` if there is no new frame;
                a number: poll up to that many seconds, then raise ``TimeoutError``.
            poll_s: sleep between polls, seconds.

        Returns:
            :class:`MsgOutFrame` (reservoirs copied right after the frame), or ``None``.
        """
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self._read_newest(self._out_frames, self._last_out_id, with_res=True)
            if got is not None:
                f, res = got
                self._last_out_id = int(f["id"])
                self._last_ts = float(f["ts"])
                return MsgOutFrame(
                    id=int(f["id"]),
                    ts=float(f["ts"]),
                    active=active_from_bitmap(int(f["b_header"])),
                    as_index=np.array(f["body"]["as_index"], dtype=np.uint32),
                    n_flow_on=np.array(f["body"]["n_flow_on"], dtype=np.int32),
                    fct=np.stack([res["fct"]["t"], res["fct"]["v"]], axis=-1).astype(np.float32),
                    flow_duration=np.stack(
                        [res["flow_duration"]["t"], res["flow_duration"]["v"]], axis=-1
                    ).astype(np.float32),
                )
            if deadline is None:
                return None
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no msg_out frame newer than id {self._last_out_id} in {self.path} within {timeout} s"
                )
            time.sleep(poll_s)

    def write_msg_in(self, weights: np.ndarray, *, ts: float | None = None) -> int:
        """Publish server weights: ``score`` = weights, ``weights`` = their alias table.

        Args:
            weights: float ``(n,)``, ``n <= 64``, finite, ``>= 0``; entry ``j`` is bin ``j``'s
                weight, 0 marks an inactive bin (MARLLB's convention); bins ``>= n`` get 0.
            ts: timestamp to store (float32 seconds); default: the ``ts`` of the last
                ``msg_out`` frame read, i.e. the data-plane time the weights respond to.

        Returns:
            The sequence id written.

        Raises:
            ValueError: wrong length, NaN/inf or negative weights.
        """
        self._check_open()
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or not 1 <= w.size <= SHM_N_BIN:
            raise ValueError(f"weights must be 1-D with 1..{SHM_N_BIN} entries, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"weights must be finite, got {w.tolist()}")
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0 (0 = inactive server), got {w.tolist()}")
        odd, alias = alias_table(w)
        msg = np.zeros((), MSG_IN)
        msg["ts"] = self._last_ts if ts is None else ts
        msg["score"][: w.size] = w
        msg["weights"]["odd"][:] = 1.0
        msg["weights"]["odd"][: w.size] = odd
        msg["weights"]["alias"][: w.size] = alias
        self._in_id = max(self._in_id, self._max_id(self._in_frames)) + 1
        self._write_frame("msg_in_frames", msg, self._in_id)
        return self._in_id

    # --- data-plane side --------------------------------------------------------------
    def write_msg_out(
        self, n_flow_on: np.ndarray, active: np.ndarray, ts: float, as_index: np.ndarray | None = None
    ) -> int:
        """Publish a ``msg_out`` frame (data-plane side), as VPP every ``SHM_UPT_DT``.

        Fills ``msg_out_cache`` then copies it to frame ``id & 3``, id last.

        Args:
            n_flow_on: int ``(n,)``, ``n <= 64``: established flows per bin.
            active: bool ``(n,)``: active bins.
            ts: data-plane time, seconds.
            as_index: uint32 ``(n,)``; default ``0..n-1``.

        Returns:
            The sequence id written.
        """
        self._check_open()
        q = np.asarray(n_flow_on)
        a = np.asarray(active, dtype=bool)
        if q.ndim != 1 or q.size > SHM_N_BIN or a.shape != q.shape:
            raise ValueError(f"n_flow_on and active must be 1-D of equal length <= 64, got {q.shape}, {a.shape}")
        c = self._out_cache
        c["ts"] = ts
        c["b_header"] = bitmap_from_active(a)
        body = np.zeros(SHM_N_BIN, AS_STAT)
        body["as_index"][: q.size] = np.arange(q.size) if as_index is None else as_index
        body["n_flow_on"][: q.size] = q
        c["body"] = body
        self._out_id = max(self._out_id, self._max_id(self._out_frames)) + 1
        c["id"] = self._out_id
        self._write_frame("msg_out_frames", c, self._out_id)
        return self._out_id

    def write_reservoirs(self, fct: np.ndarray, flow_duration: np.ndarray) -> None:
        """Overwrite the reservoir blocks of the first ``n`` bins in place.

        Args:
            fct, flow_duration: float ``(n, 128, 2)`` ``(t, v)`` pairs in seconds, ``n <= 64``.
        """
        self._check_open()
        f = np.asarray(fct, dtype=np.float32)
        d = np.asarray(flow_duration, dtype=np.float32)
        if f.ndim != 3 or f.shape[1:] != (RESERVOIR_N_BIN, 2) or f.shape != d.shape or f.shape[0] > SHM_N_BIN:
            raise ValueError(f"reservoirs must be (n<=64, {RESERVOIR_N_BIN}, 2), got {f.shape} and {d.shape}")
        n = f.shape[0]
        self._res["fct"]["t"][:n] = f[..., 0]
        self._res["fct"]["v"][:n] = f[..., 1]
        self._res["flow_duration"]["t"][:n] = d[..., 0]
        self._res["flow_duration"]["v"][:n] = d[..., 1]

    def read_msg_in(self) -> MsgInFrame | None:
        """Newest whole ``msg_in`` frame newer than the last one read (data-plane side), else ``None``.

        Copies it into ``msg_in_cache`` as VPP does.
        """
        self._check_open()
        got = self._read_newest(self._in_frames, self._last_in_id, with_res=False)
        if got is None:
            return None
        f, _ = got
        self._last_in_id = int(f["id"])
        self._in_cache[()] = f
        return MsgInFrame(
            id=int(f["id"]),
            ts=float(f["ts"]),
            score=np.array(f["score"], dtype=np.float32),
            odd=np.array(f["weights"]["odd"], dtype=np.float32),
            alias=np.array(f["weights"]["alias"], dtype=np.uint32),
        )
