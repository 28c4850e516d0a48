"""Names planted beside a store are never written through (issue 29, item 3).

A symlink at ``<store>.lock`` once had its target overwritten with the lock text; one at ``<store>.new`` had its
target overwritten by the whole store, and the store's name became a symlink to it; the ``.rewrite`` copy of a
recovery used the same code. Here each name gets a symlink (to a victim file, or dangling), a hard link or a
directory: the writer refuses with one line naming it, the victim's bytes are unchanged, a dangling link's
target is not created, and the store is unchanged (or not created).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from activemat.campaign.config import parse_campaign
from activemat.errors import StoreError
from activemat.space.pool import build_pool
from activemat.store.export import export_store
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = campaign_toml({}, name="links", space={"supercell": [1, 1, 2], "mode": "configurations"},
                         calculator={"preset": "gpaw-fast"})
PRECIOUS = b"precious bytes that are not a store\n"


def _create(path: Path) -> CampaignStore:
    return CampaignStore.create(path, campaign_text=CAMPAIGN, identity=parse_campaign(CAMPAIGN).identity(),
                                pool=build_pool(supercell=(1, 1, 2)), presets={})


def _open(path: Path) -> CampaignStore:
    return CampaignStore.open(path, parse_campaign(CAMPAIGN).identity())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file of someone else's, outside the store's folder."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    path = other / "victim.txt"
    path.write_bytes(PRECIOUS)
    return path


def _refused(exc: pytest.ExceptionInfo, name: Path, what: str) -> str:
    msg = str(exc.value)
    print("MESSAGE:", msg)
    assert "\n" not in msg and f"{name} {what}" in msg and f"remove {name} and run again" in msg, msg
    return msg


@pytest.mark.parametrize("suffix", [".lock", ".new"])
def test_a_symlink_at_a_name_beside_a_new_store_is_refused(tmp_path, victim, suffix):
    store = tmp_path / "runs" / "c.h5"
    store.parent.mkdir()
    planted = Path(f"{store}{suffix}")
    planted.symlink_to(victim)
    with pytest.raises(StoreError) as exc:
        _create(store)
    _refused(exc, planted, f"is a symbolic link (to {victim})")
    assert victim.read_bytes() == PRECIOUS
    assert not store.exists() and not store.is_symlink(), "the store's name must not become anything"
    assert planted.is_symlink(), "a name activemat did not create is not removed either"


@pytest.mark.parametrize("suffix", [".lock", ".new"])
def test_a_dangling_symlink_creates_nothing(tmp_path, suffix):
    store = tmp_path / "c.h5"
    target = tmp_path / "elsewhere" / "created-through-the-link"
    target.parent.mkdir()
    planted = Path(f"{store}{suffix}")
    planted.symlink_to(target)
    with pytest.raises(StoreError) as exc:
        _create(store)
    _refused(exc, planted, "is a symbolic link")
    assert not target.exists() and not store.exists()


def test_a_hard_link_or_directory_at_the_lock_is_refused(tmp_path, victim):
    store = tmp_path / "c.h5"
    lock = Path(f"{store}.lock")
    os.link(victim, lock)
    with pytest.raises(StoreError) as exc:
        _create(store)
    _refused(exc, lock, "has 2 hard links")
    assert victim.read_bytes() == PRECIOUS and not store.exists()
    lock.unlink()
    lock.mkdir()
    with pytest.raises(StoreError) as exc:
        _create(store)
    _refused(exc, lock, "is a directory")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the lock file to another user needs root")
def test_a_lock_file_of_another_user_is_refused(tmp_path):
    store = tmp_path / "c.h5"
    lock = Path(f"{store}.lock")
    lock.write_bytes(b"4242\nelsewhere\n/not/yours\n")
    os.chown(lock, 65534, 65534)
    with pytest.raises(StoreError) as exc:
        _create(store)
    _refused(exc, lock, "belongs to uid 65534, not you")
    assert lock.read_bytes() == b"4242\nelsewhere\n/not/yours\n"


def test_a_leftover_new_file_of_a_killed_writer_is_replaced(tmp_path):
    store = tmp_path / "c.h5"
    leftover = Path(f"{store}.new")
    leftover.write_bytes(b"half a store")
    with _create(store):
        pass
    assert not leftover.exists() and read_store(store).n_calculations == 0


# A writer killed with the store open: resuming it copies the file into <store>.rewrite and swaps that in.
KILLED = """
import os, sys
from activemat.campaign.config import parse_campaign
from activemat.space.pool import build_pool
from activemat.store.write import CampaignStore
text = sys.argv[2]
s = CampaignStore.create(sys.argv[1], campaign_text=text, identity=parse_campaign(text).identity(),
                         pool=build_pool(supercell=(1, 1, 2)), presets={})
s.add_attempt(0, 0, "gpaw-fast", 0, "seed")
os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("plant", ["victim", "dangling"])
def test_a_symlink_at_the_recovery_copy_is_refused_and_the_store_unchanged(tmp_path, victim, plant):
    store = tmp_path / "c.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(store), CAMPAIGN], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    before = sha(store)
    planted = Path(f"{store}.rewrite")
    target = victim if plant == "victim" else tmp_path / "elsewhere" / "made-through-the-link"
    planted.symlink_to(target)
    with pytest.raises(StoreError) as exc:
        _open(store)
    _refused(exc, planted, "is a symbolic link")
    assert sha(store) == before and not store.is_symlink()
    assert victim.read_bytes() == PRECIOUS and (plant == "victim" or not target.exists())
    planted.unlink()
    with _open(store) as s:  # with the link gone the recovery runs
        assert s.interrupt_running() == [(0, 0)]
    assert read_store(store).n_calculations == 1


def test_a_symlink_at_the_export_part_file_is_refused(tmp_path, victim):
    store = tmp_path / "c.h5"
    with _create(store):
        pass
    out = tmp_path / "calculations.csv"
    planted = Path(f"{out}.part")
    planted.symlink_to(victim)
    with pytest.raises(StoreError) as exc:
        export_store(store, out)
    _refused(exc, planted, "is a symbolic link")
    assert victim.read_bytes() == PRECIOUS and not out.exists()
    planted.unlink()
    assert export_store(store, out) == 0 and out.is_file() and not planted.exists()
