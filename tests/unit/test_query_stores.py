"""Real campaign stores for the query/export/predict/inspect/plot tests (no tests here).

Each store is written by the real loop (`run_campaign`) on an in-process Dask
cluster, with the ReplayOracle (a named fake answering from a table) instead
of GPAW. They are built once per test session, on first use, under pytest's
temporary folder.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.setup import build_campaign_pool, prepare
from activemat.compute.oracle import ReplayOracle
from activemat.campaign.progress import Reporter
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml, synthetic_gaps

TUTORIAL_FIXED = ["Si2Ge14", "Si6Ge10", "Si8Ge8", "Si10Ge6", "Si12Ge4", "Si14Ge2"]
FAILING = (0, 401)  # Si16 and Ge16 have no answer: the first two seeds fail


def tutorial_gap(x: np.ndarray) -> np.ndarray:
    """Known, slightly bowed gaps for the compositions store (not physics)."""
    return 0.60 - 0.50 * x + 0.12 * x * (1 - x)


_STORES: dict[str, Path] = {}


def campaign_text(name: str, store: Path, *, mode="configurations", model="gp", kind="max_std", budget=10,
                  **overrides) -> str:
    """A campaign of the 16-atom cell on ``store`` (seed 2, 4 space-filling picks, no optimiser restarts, two
    workers, no dashboard); ``overrides`` as campaign_toml takes them."""
    return campaign_toml({"campaign": {"name": name, "store": store, "seed": 2},
                          "space": {"supercell": [2, 2, 2], "mode": mode}, "model": {"kind": model, "restarts": 0},
                          "strategy": {"kind": kind, "n_seed": 4}, "stop": {"budget": budget},
                          "cluster": {"workers": 2, "dashboard": False}}, **overrides)


def _run(client, text: str, oracle) -> None:
    config = parse_campaign(text)
    report = Reporter(config.stop.budget, Console(file=io.StringIO()))
    run_campaign(config, text, client=client, report=report, task=oracle)


def stores(tmp_path_factory) -> dict[str, Path]:
    """name -> path of: configs (GP, with failures), tutorial (linear, fixed), single (1 result), empty."""
    if _STORES:
        return _STORES
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("stores")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        text = campaign_text("configs", root / "configs.h5", budget=10)
        gaps = synthetic_gaps(build_campaign_pool(parse_campaign(text)))
        _run(client, text, ReplayOracle({k: v for k, v in gaps.items() if k not in FAILING}, delay=0.01))

        text = campaign_text("tutorial", root / "tutorial.h5", mode="compositions", model="linear", kind="fixed",
                             strategy={"fixed": TUTORIAL_FIXED}, budget=6)
        pool = build_campaign_pool(parse_campaign(text))
        _run(client, text, ReplayOracle(dict(enumerate(tutorial_gap(pool.x_b).tolist())), delay=0.01))

        text = campaign_text("single", root / "single.h5", budget=1)
        _run(client, text, ReplayOracle(gaps, delay=0.0))

    text = campaign_text("empty", root / "empty.h5")
    config = parse_campaign(text)
    pool, (preset,), _ = prepare(config)
    CampaignStore.create(root / "empty.h5", campaign_text=text, identity=config.identity(), pool=pool,
                         presets={preset.name: preset.model_dump(mode="json")}).close()
    _STORES.update({name: root / f"{name}.h5" for name in ("configs", "tutorial", "single", "empty")})
    return _STORES


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def with_test_set(src: Path, dst: Path, n: int = 2) -> tuple[Path, np.ndarray]:
    """A copy of a store whose first `n` successfully computed candidates are marked held-out,
    plus one snapshot carrying a finite test_mae (as a loop with a test set writes)."""
    from activemat.campaign.stored import open_campaign

    copy_store(src, dst)
    view = open_campaign(dst)
    train, _ = view.training_set()
    held = np.sort(train[:n])
    config = view.config()
    with CampaignStore.open(dst, config.identity()) as store:
        store.mark_test(held)
        snaps = view.snapshots
        last = {k: snaps[k][-1] for k in ("iteration", "n_train", "cv_mae", "cv_rmse", "cv_r2", "baseline_mae",
                                          "max_std", "mean_std", "model")}
        last.update(iteration=int(last["iteration"]) + 1, test_mae=0.0123, model=str(last["model"]))
        store.add_snapshot(last, snaps["pool_mean"][-1], snaps["pool_std"][-1])
    return dst, held
