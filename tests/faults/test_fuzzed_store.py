"""A seeded corpus of damaged stores (issue 29, item 8): the data or one line, never a traceback or wrong numbers.

A small real store (a replayed 4-atom campaign with model snapshots) is copied 160 times, each copy damaged
once by :func:`benchmarks.fuzz_store.damage` (bit flips in data and metadata, zeroed blocks, truncations,
deleted groups, datasets and attributes, attributes of the wrong type; 20 of each kind), and every read command
(status, query, export, inspect, predict) runs on each in this process. Each must print exactly what it prints
for the undamaged store, or exit 2 with one ``activemat: error:`` line; no read may change a byte of the copy.
Before the column and root-attribute checks of :mod:`activemat.store.read`, a deleted dataset read as empty
values (``query`` and ``export`` printed them, exit 0) and a deleted ``supercell`` or ``campaign_toml``
attribute was a traceback. ``python -m benchmarks.fuzz_store`` prints the counts for a bigger corpus.
"""

from __future__ import annotations

import hashlib

import pytest

from benchmarks.fuzz_store import FAILURES, KINDS, fuzz, make_store

pytestmark = pytest.mark.faults

COPIES = 20 * len(KINDS)


def test_every_read_command_on_every_damaged_copy_gives_the_data_or_one_line(tmp_path):
    original = make_store(tmp_path)
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    result = fuzz(original, COPIES, seed=29, folder=tmp_path)
    counts = result["counts"]
    print({kind: dict(c) for kind, c in counts.items()})
    assert result["failures"] == [], result["failures"][:10]
    assert sum(sum(c.values()) for c in counts.values()) == COPIES * 5
    for kind in KINDS:  # every kind of damage was seen by some read (the corpus tests something)
        assert counts[kind].get("error", 0) > 0, (kind, counts[kind])
        assert not set(counts[kind]) & set(FAILURES)
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
