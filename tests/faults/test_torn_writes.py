"""A chunk torn by a killed writer: the store resumes (issue 29, the chaos test's checksum mismatch).

The writer rewrites a column's chunk in place; a 1024-row chunk of ``calculations/host`` is 64 KiB, 17 pages.
Linux stops a ``pwrite`` between pages when its process is killed, so ``kill -9`` in the middle of a flush can
leave a chunk whose first pages are new and the rest old, under its old Fletcher-32 checksum. Recovery refused
such a store ("could not be copied to recover it"): the campaign could never resume. Here every flush of a
short scripted campaign is torn at a page boundary in every chunk it rewrote (as the first write of the flush,
and as its last), and every torn file must resume with each row either finished with its final values or run
again, and nothing finished before the flush lost. Two torn chunks are not a kill's doing: still refused.
"""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from activemat.campaign.config import parse_campaign
from activemat.compute.records import CalculationRecord
from activemat.errors import StoreError
from activemat.space.pool import build_pool
from activemat.store import write as write_module
from activemat.store.read import read_store
from activemat.store.write import Attempt, CampaignStore
from tests.conftest import campaign_toml

pytestmark = pytest.mark.faults

CAMPAIGN = campaign_toml({}, name="torn", space={"supercell": [1, 1, 2], "mode": "configurations"},
                         calculator={"preset": "gpaw-fast"})
IDENTITY = parse_campaign(CAMPAIGN).identity()
PAGE = 4096


def _record(candidate: int, ok: bool = True) -> CalculationRecord:
    return CalculationRecord(candidate=candidate, attempt=0, preset="gpaw-fast", status="ok" if ok else "failed",
                             gap=0.5 + 0.01 * candidate if ok else float("nan"), started=1.0, finished=2.0,
                             host=f"node-{candidate}" * 6, worker=f"tcp://127.0.0.1:{40000 + candidate}",
                             error="" if ok else "SCF did not converge " * 15, parameters={"xc": "PBE"})


@pytest.fixture(scope="module")
def flushes(tmp_path_factory) -> tuple[list[bytes], dict]:
    """The store's bytes after every flush of a short campaign (each a file as a kill at that moment leaves it:
    its writer still open), and the final rows."""
    path = tmp_path_factory.mktemp("torn") / "c.h5"
    states: list[bytes] = []
    real = write_module.StoreWriter._write

    def recording(self, size, action):
        result = real(self, size, action)
        states.append(path.read_bytes())
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(write_module.StoreWriter, "_write", recording)
        pool = build_pool(supercell=(1, 1, 2))
        s = CampaignStore.create(path, campaign_text=CAMPAIGN, identity=IDENTITY, pool=pool, presets={})
        with s:
            _campaign(s, len(pool))
            states.append(path.read_bytes())
    final = read_store(path).calculations
    return states, final


def _campaign(s: CampaignStore, n: int) -> None:
    """Submissions, results (one failed), more submissions, more results, a snapshot."""
    rows = s.add_attempts([Attempt(c, 0, "gpaw-fast", 0, "seed") for c in range(3)])
    s.finish_attempts([(rows[0], _record(0)), (rows[1], _record(1, ok=False))])
    rows += s.add_attempts([Attempt(c, 0, "gpaw-fast", 1, "max_std") for c in (3, 4)])
    s.finish_attempts([(rows[2], _record(2)), (rows[3], _record(3)), (rows[4], _record(4))])
    s.add_snapshot({"iteration": 1}, np.zeros(n), np.ones(n))


def _chunks(data: bytes, where) -> dict[tuple[str, int], tuple[int, int]]:
    """(dataset, chunk index) -> (byte offset, size) of every stored chunk of a file's bytes."""
    where.write_bytes(data)
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.chunks:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                out[(name, i)] = (info.byte_offset, info.size)

    with h5py.File(where, "r", locking=False, swmr=True) as f:
        f.visititems(visit)
    return out


def _tears(old: bytes, new: bytes, where, last: bool) -> list[tuple[str, bytes]]:
    """Files a kill in the flush from ``old`` to ``new`` can leave: a chunk the flush rewrote in place (the status
    column's and the largest other one) with its pages up to a page boundary new and the rest old, as the flush's
    first write (in ``old``) or, with ``last``, its last (in ``new``)."""
    before, after = _chunks(old, where), _chunks(new, where)
    rewritten = {key: place for key, place in after.items()
                 if before.get(key) == place and old[place[0]:place[0] + place[1]] != new[place[0]:place[0] + place[1]]
                 and place[1] > PAGE - place[0] % PAGE}  # across a page boundary: a kill can cut it
    picked = [key for key in rewritten if key[0].endswith("/status")]
    others = sorted((key for key in rewritten if key not in picked), key=lambda key: -rewritten[key][1])
    out = []
    for key in picked + others[:1]:
        offset, size = rewritten[key]
        cuts = range(math.ceil((offset + 1) / PAGE) * PAGE, offset + size, PAGE)
        cut = cuts[len(cuts) // 2]
        torn = bytearray(new if last else old)
        torn[offset:cut] = new[offset:cut]
        torn[cut:offset + size] = old[cut:offset + size]
        out.append((f"{key[0]}#{key[1]} as the flush's {'last' if last else 'first'} write", bytes(torn)))
    return out


def test_a_kill_mid_flush_leaves_a_store_that_resumes(flushes, tmp_path):
    states, final = flushes
    cases, seen = 0, []
    for k in range(1, len(states)):
        old, new = states[k - 1], states[k]
        (tmp_path / "old.h5").write_bytes(old)
        done_before = set(np.flatnonzero(np.isin(read_store(tmp_path / "old.h5").calculations["status"],
                                                 ["ok", "failed"])).tolist())
        for what, torn in _tears(old, new, tmp_path / "probe.h5", last=bool(k % 2)):
            cases += 1
            seen.append(f"flush {k}: {what}")
            path = tmp_path / f"case{cases}.h5"
            path.write_bytes(torn)
            try:
                with h5py.File(path, "r", locking=False, swmr=True) as f:
                    f.visititems(lambda n, o: None if not isinstance(o, h5py.Dataset) else (o[()], None)[1])
                whole = True
            except OSError:
                whole = False
            assert not whole, f"flush {k}, {what}: the tear should fail a checksum"
            try:
                CampaignStore.open(path, IDENTITY).close()
            except StoreError as exc:
                pytest.fail(f"flush {k}, {what}: a killed writer's store did not resume: {exc}")
            calc = read_store(path).calculations
            done = np.isin(calc["status"], ["ok", "failed"])
            assert set(calc["status"].tolist()) <= {"ok", "failed", "running", "interrupted"}, (what, calc["status"])
            assert done_before <= set(np.flatnonzero(done).tolist()), f"flush {k}, {what}: a finished row was lost"
            for name in ("gap", "host", "worker", "error", "candidate", "status"):
                got, want = calc[name][done], final[name][:len(done)][done]
                assert (got == want)[~(np.asarray(got != got, dtype=bool))].all(), (k, what, name, got, want)
    print("TORN", *seen, sep="\n  ")
    assert len(seen) >= 6 and any("/status#" in w for w in seen) and any("/host#" in w for w in seen), seen
    assert any("first write" in w for w in seen) and any("last write" in w for w in seen), seen


def test_two_torn_chunks_are_damage_not_a_kill(flushes, tmp_path):
    states, _ = flushes
    torn = bytearray(states[-1])
    chunks = _chunks(states[-1], tmp_path / "probe.h5")
    for name in ("calculations/host", "calculations/gap"):
        offset, size = chunks[(name, 0)]
        torn[offset + 8] ^= 0x10
    path = tmp_path / "twice.h5"
    path.write_bytes(bytes(torn))
    before = path.read_bytes()
    with pytest.raises(StoreError) as exc:
        CampaignStore.open(path, IDENTITY)
    msg = str(exc.value)
    assert "\n" not in msg and "could not be copied to recover it" in msg and "checksums" in msg, msg
    assert path.read_bytes() == before


def test_a_reader_of_a_torn_store_is_told_to_resume(flushes, tmp_path):
    states, final = flushes
    torn = next(t for k in range(1, len(states)) for t in _tears(states[k - 1], states[k], tmp_path / "p.h5", True))
    path = tmp_path / "torn.h5"
    path.write_bytes(torn[1])
    with pytest.raises(StoreError) as exc:
        read_store(path)
    msg = str(exc.value)
    assert "\n" not in msg and "checksum" in msg and "resume the campaign to recover it" in msg, msg
    CampaignStore.open(path, IDENTITY).close()
    assert len(read_store(path).calculations["status"]) <= len(final["status"])
