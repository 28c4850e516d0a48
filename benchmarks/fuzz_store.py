"""Fuzzed stores: many seeded damaged copies of one small real store, every read command on each; what came out.

A store is made once by a real campaign (the 7-candidate 4-atom space, four results from a ReplayOracle, a
named fake for the DFT; store, loop and model are real). Each copy gets one seeded damage:

  flip_data     one bit flipped inside a dataset's chunk (HDF5's Fletcher-32 checksum covers it)
  flip_meta     one bit flipped outside every chunk: object headers, B-trees, heaps, superblock (or free space)
  zero_block    64 bytes zeroed at a random offset
  truncate      the file cut at a random offset
  del_group     a top-level group deleted
  del_dataset   a dataset deleted
  del_attr      an attribute deleted
  retype_attr   an attribute rewritten with a value of another type

Each read command (status, query, export, inspect, predict) runs in this process (``activemat.cli.main``) and
its outcome is one of: ``same`` (exit 0, output identical to the undamaged store's), ``error`` (exit 2, one
``activemat: error:`` line), or a failure: ``wrong`` (exit 0 with other output: silently wrong data),
``traceback`` (an exception escaped), ``noisy`` (exit 2 with more than one line, or another exit code). A
read that changes a byte of the damaged copy is ``altered``.

    .venv/bin/python -m benchmarks.fuzz_store --copies 1000 --seed 1

The test (tests/faults/test_fuzzed_store.py) runs a few hundred copies with the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np

KINDS = ("flip_data", "flip_meta", "zero_block", "truncate", "del_group", "del_dataset", "del_attr", "retype_attr")
FAILURES = ("wrong", "traceback", "noisy", "altered")
COMMANDS = {
    "status": ["status", "{store}"],
    "query": ["query", "{store}", "--format", "csv"],
    "export": ["export", "{store}", "-o", "{out}/out.csv"],
    "inspect": ["inspect", "{store}"],
    "predict": ["predict", "{store}", "Si2Ge2"],
}


def make_store(folder: Path) -> Path:
    """A small real store: four results of the 4-atom campaign (ReplayOracle answers), with model snapshots."""
    from distributed import Client, LocalCluster
    from rich.console import Console

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.loop import run_campaign
    from activemat.campaign.progress import Reporter
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from tests.conftest import TINY, campaign_toml, synthetic_gaps

    store = folder / "tiny.h5"
    text = campaign_toml(TINY, store=str(store), stop={"budget": 4})
    config = parse_campaign(text)
    oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as c, \
            Client(c) as client:
        run_campaign(config, text, client=client, task=oracle, report=Reporter(4, Console(file=io.StringIO())))
    return store


def _layout(path: Path) -> tuple[list[tuple[int, int]], list[str], list[str], list[tuple[str, str]]]:
    """Chunk byte ranges, groups, datasets and (object, attribute) names of a store."""
    chunks, groups, datasets, attrs = [], [], [], [("/", name) for name in h5py.File(path, "r").attrs]

    def visit(name, obj):
        attrs.extend((name, a) for a in obj.attrs)
        if isinstance(obj, h5py.Group):
            groups.append(name)
            return
        datasets.append(name)
        if obj.chunks:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                chunks.append((info.byte_offset, info.size))
        elif obj.id.get_offset() is not None:
            chunks.append((obj.id.get_offset(), obj.id.get_storage_size()))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return chunks, groups, datasets, attrs


def _flip(path: Path, offset: int, bit: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        value = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([value ^ (1 << bit)]))


def _wrong_value(value, rng: np.random.Generator):
    """A value of another type than ``value``: text for numbers, a number for text, a float array otherwise."""
    if isinstance(value, (str, bytes)):
        return int(rng.integers(-5, 5))
    if isinstance(value, (int, np.integer)):
        return ["abc", 1.5, np.array([1, 2])][int(rng.integers(3))]
    if isinstance(value, (float, np.floating)):
        return "1.5"
    return np.array([0.5, float("nan")])


def damage(path: Path, kind: str, rng: np.random.Generator) -> str:
    """Damage the store at ``path`` in place (one damage of ``kind``, drawn from ``rng``); what was done."""
    size = path.stat().st_size
    chunks, groups, datasets, attrs = _layout(path)
    if kind == "flip_data":
        offset, length = chunks[int(rng.integers(len(chunks)))]
        where, bit = offset + int(rng.integers(length)), int(rng.integers(8))
        _flip(path, where, bit)
        return f"bit {bit} of byte {where} (a chunk at {offset})"
    if kind == "flip_meta":
        inside = np.zeros(size, bool)
        for offset, length in chunks:
            inside[offset:offset + length] = True
        where, bit = int(rng.choice(np.flatnonzero(~inside))), int(rng.integers(8))
        _flip(path, where, bit)
        return f"bit {bit} of byte {where}"
    if kind == "zero_block":
        where = int(rng.integers(size - 64))
        with open(path, "r+b") as fh:
            fh.seek(where)
            fh.write(bytes(64))
        return f"64 bytes at {where}"
    if kind == "truncate":
        where = int(rng.integers(size))
        os.truncate(path, where)
        return f"cut at {where} of {size}"
    with h5py.File(path, "r+") as f:
        if kind == "del_group":
            name = [g for g in groups if "/" not in g][int(rng.integers(sum("/" not in g for g in groups)))]
            del f[name]
        elif kind == "del_dataset":
            name = datasets[int(rng.integers(len(datasets)))]
            del f[name]
        else:
            obj, attr = attrs[int(rng.integers(len(attrs)))]
            name = f"{obj}@{attr}"
            if kind == "del_attr":
                del f[obj].attrs[attr]
            else:
                f[obj].attrs[attr] = _wrong_value(f[obj].attrs[attr], rng)
    return name


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def read(store: Path, command: str, out: Path) -> tuple[int | str, str, str]:
    """Run one read command in this process: (exit code or 'traceback', stdout, stderr)."""
    from activemat.cli import main

    argv = [a.format(store=store, out=out) for a in COMMANDS[command]]
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001  (what the fuzzing looks for)
        return "traceback", stdout.getvalue(), f"{type(exc).__name__}: {exc}"
    text = stdout.getvalue()
    if command == "export" and code == 0:
        text = (out / "out.csv").read_text()
    # the store's name, and the centring of a title around it, differ between copies
    text = "\n".join(" ".join(line.split()) for line in text.replace(str(store), "STORE").splitlines())
    return code, text, stderr.getvalue()


def outcome(result: tuple, reference: tuple) -> str:
    code, out, err = result
    if code == "traceback":
        return "traceback"
    lines = err.strip().splitlines()
    if code == 2:
        return "error" if len(lines) == 1 and lines[0].startswith("activemat: error: ") else "noisy"
    if code == 0:
        return "same" if out == reference[1] else "wrong"
    return "noisy"


def fuzz(original: Path, copies: int, seed: int, folder: Path, commands=tuple(COMMANDS), log=None) -> dict:
    """Damage ``copies`` copies of ``original`` (kinds in turn, seeded) and run every command on each."""
    out = folder / "out"
    out.mkdir(exist_ok=True)
    reference = {c: read(original, c, out) for c in commands}
    for c, ref in reference.items():
        assert ref[0] == 0, f"the undamaged store fails {c}: {ref[2]}"
    before = _sha(original)
    counts = {kind: Counter() for kind in KINDS}
    failures = []
    rng = np.random.default_rng(seed)
    for i in range(copies):
        kind = KINDS[i % len(KINDS)]
        copy = folder / f"copy{i}.h5"
        shutil.copyfile(original, copy)
        what = damage(copy, kind, rng)
        damaged = _sha(copy)
        for command in commands:
            result = read(copy, command, out)
            got = outcome(result, reference[command])
            if _sha(copy) != damaged:
                got = "altered"
            counts[kind][got] += 1
            if got in FAILURES:
                failures.append({"copy": i, "kind": kind, "damage": what, "command": command, "outcome": got,
                                 "stderr": result[2].strip()[-300:]})
                if log:
                    log(f"{i} {kind} {what} {command}: {got}: {result[2].strip()[-300:]}")
        copy.unlink()
        for leftover in folder.glob(f"copy{i}.h5*"):  # a reader leaves nothing behind, but be sure
            leftover.unlink()
    assert _sha(original) == before, "a read changed the undamaged store"
    return {"counts": {k: dict(v) for k, v in counts.items()}, "failures": failures}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=800)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-store-") as tmp:
        folder = Path(tmp)
        original = make_store(folder)
        start = time.perf_counter()
        result = fuzz(original, args.copies, args.seed, folder, log=print)
        seconds = time.perf_counter() - start
    total = Counter()
    print(f"{args.copies} damaged copies x {len(COMMANDS)} read commands, seed {args.seed}, {seconds:.0f} s")
    for kind, c in result["counts"].items():
        total.update(c)
        print(f"  {kind:<12} " + "  ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print("  all          " + "  ".join(f"{k} {v}" for k, v in sorted(total.items())))
    print(f"failures: {sum(total[k] for k in FAILURES)}")


if __name__ == "__main__":
    main()
