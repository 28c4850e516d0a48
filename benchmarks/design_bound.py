"""Design bound: how few labels could any selection rule need with the campaign's model? (labelled data, no DFT)

The campaign's GP is fitted once on every label, and those hyperparameters are kept fixed: the best a campaign could
hope to learn. Designs of N labels are then compared by the pool MAE of that GP trained on them:

- random: N labels in random order (median over repeats);
- sequential ivr: the ivr rule one pick at a time, as a campaign picks, minus hyperparameter learning;
- I-optimal: the N labels with the smallest integrated posterior variance over the pool, by exchange search
  (greedy start, then single swaps until none helps). A strategy that does not know the answers can at best pick
  on the posterior, and for a GP with fixed hyperparameters the posterior variance does not depend on the labels;
- clairvoyant: the N labels with the smallest pool MAE itself, by the same search. It knows every answer, so it is
  not a strategy but a floor for this model.

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.design_bound --name reference-pbe \
        --campaign campaigns/sige16-pbe.toml --oracle benchmarks/data/sige16-pbe.extxyz
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activemat.analysis.replay import labelled_pool
from activemat.campaign.config import load_campaign
from activemat.campaign.setup import model_factory
from activemat.learn.gp import GPRegressor
from benchmarks.common import command, load, or_never, save


class FixedGP:
    """Pool predictions of a GP with fixed hyperparameters trained on any subset, as GPRegressor makes them."""

    def __init__(self, model: GPRegressor, X: np.ndarray, y: np.ndarray):
        kernel = model.kernel_
        Z = model.scaler_.transform(X)
        self.y = y
        self.K = kernel(Z)  # white noise on the diagonal: the training covariance
        self.K[np.diag_indices_from(self.K)] += model.gp_.alpha
        signal = kernel.k1  # GPRegressor's kernel is C * Matern + White: k1 is the latent function's covariance
        self.K_latent = signal(Z)
        self.prior_var = signal.diag(Z)

    def predict(self, picks) -> np.ndarray:
        picks = list(picks)
        y = self.y[picks]
        # normalize_y=True: the GP works on (y - mean) / std of its training targets
        mu, s = y.mean(), (y.std() or 1.0)
        w = np.linalg.solve(self.K[np.ix_(picks, picks)], (y - mu) / s)
        return mu + s * (self.K_latent[:, picks] @ w)

    def errors(self, picks) -> tuple[float, float]:
        err = np.abs(self.predict(picks) - self.y)
        return float(err.mean()), float(err.max())

    def mae(self, picks) -> float:
        return self.errors(picks)[0]

    def integrated_variance(self, picks) -> float:
        """Summed posterior variance of f over the pool, in units of the normalised targets."""
        picks = list(picks)
        cross = self.K_latent[picks, :]
        explained = np.einsum("ij,ij->j", cross, np.linalg.solve(self.K[np.ix_(picks, picks)], cross))
        return float(np.sum(self.prior_var - explained))


# Costs are compared rounded: symmetric candidates tie, and BLAS round-off (thread count) would otherwise decide.
TIE_DECIMALS = 9


def greedy_add(picks: list[int], n_pool: int, cost) -> list[int]:
    taken = set(picks)
    best = min((round(cost(picks + [c]), TIE_DECIMALS), c) for c in range(n_pool) if c not in taken)
    return picks + [best[1]]


def exchange(picks: list[int], n_pool: int, cost, rng: np.random.Generator, max_passes: int = 6) -> list[int]:
    """Fedorov-style exchange: swap single picks for the best outsider until a pass improves nothing."""
    picks, best = list(picks), round(cost(picks), TIE_DECIMALS)
    for _ in range(max_passes):
        improved = False
        for i in rng.permutation(len(picks)):
            outside = np.setdiff1d(np.arange(n_pool), picks)
            trial = list(picks)
            values = []
            for c in outside:
                trial[i] = int(c)
                values.append(round(cost(trial), TIE_DECIMALS))
            j = int(np.argmin(values))
            if values[j] < best:
                best, picks[i], improved = values[j], int(outside[j]), True
        if not improved:
            break
    return picks


def curve(gp: FixedGP, n_pool: int, cost, sizes: range, rng, search: bool, target: float) -> dict[int, list]:
    """Pool (MAE, max) of the design at each size; stops at the first size that reaches ``target``."""
    picks: list[int] = []
    out = {}
    for n in sizes:
        while len(picks) < n:
            picks = greedy_add(picks, n_pool, cost)
        if search:
            picks = exchange(picks, n_pool, cost, rng)
        out[n] = list(gp.errors(picks))
        if out[n][0] <= target:
            break
    return out


def random_labels_to(gp: FixedGP, n_pool: int, target: float, repeats: int, budget: int) -> list[int | None]:
    out = []
    for seed in range(repeats):
        order = list(np.random.default_rng(seed).permutation(n_pool))
        out.append(next((n for n in range(3, budget + 1) if gp.mae(order[:n]) <= target), None))
    return out


def first_reaching(c: dict[int, list], target: float) -> int | None:
    return next((n for n, (mae, _) in sorted(c.items()) if mae <= target), None)


def summary(result: dict) -> list[str]:
    """The report's section on one result: labels to the target and the MAE at a third of random's, per design."""
    d, t = result, result["target_mae"]
    third = d["campaign_random_median"] / 3 if d["campaign_random_median"] else None
    at = int(third) if third else None  # the largest design within a third of random's labels
    out = [f"The campaign's GP fitted once on all {d['labels']} labels ({d['fit_seconds']:.0f} s), hyperparameters "
           f"then fixed: the best a campaign could learn. Command: `{d['command']}`.", "",
           f"| design of N labels | labels to pool MAE <= {t:g} eV | pool MAE at N = {at} (eV) "
           "| pool MAE / max at the largest N tried (eV) |", "|---|---|---|---|"]
    reached = [v for v in d["random_labels_to_mae"] if v is not None]
    out.append(f"| random, these hyperparameters (median of {len(d['random_labels_to_mae'])}) | "
               f"{or_never(d['random_median'])} (range {min(reached)}-{max(reached)}) | - | - |" if reached else
               "| random, these hyperparameters | not reached | - | - |")
    for k, v in d["designs"].items():
        last = max(v["curve"], key=int)
        mae, mx = v["curve"][last]
        mae_at = (f"{v['curve'][str(at)][0]:.4f}" if str(at) in v["curve"]
                  else f"<= {t:g} (reached at {last})" if at and int(last) < at else "-")
        out.append(f"| {k} | {or_never(v['labels_to_mae'])} | {mae_at} | {mae:.4f} / {mx:.4f} at N = {last} |")
    if third:
        out += ["", f"One third of the campaign replay's random median ({d['campaign_random_median']:g} labels) is "
                f"{third:.1f} labels."]
    return out + [""]


def limits(result: dict) -> dict:
    """Labels to the MAE target by each design (``sequential ivr``, ``I-optimal``, ``clairvoyant``), the median
    of random designs (``random``) and the ``command``: the limits the report's table of routes quotes."""
    return {**{k: v["labels_to_mae"] for k, v in result["designs"].items()}, "random": result["random_median"],
            "command": result["command"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="results/design_bound_<name>.json")
    p.add_argument("--campaign", required=True)
    p.add_argument("--oracle", required=True, help="labelled extxyz")
    p.add_argument("--target-mae", type=float, default=0.01)
    p.add_argument("--repeats", type=int, default=10, help="random orders")
    p.add_argument("--budget", type=int, default=120, help="largest design tried")
    p.add_argument("--start", type=int, default=10, help="smallest design size tried")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override campaign keys (the [model] options; mean = \"bowing\" is not supported here)")
    args = p.parse_args()
    from benchmarks.sample_efficiency import parse_set

    config, _ = load_campaign(args.campaign, parse_set(args.set))
    if config.model.mean != "constant":
        raise SystemExit("design_bound.py predicts with a constant mean; mean = \"bowing\" is not supported")
    full, _, pool, y = labelled_pool(config, args.oracle)
    X = pool.features
    t0 = time.perf_counter()
    model = model_factory(config.model, config.campaign.seed, full)().fit(X, y)  # pool-wide scaler, as the loop's
    fit_s = time.perf_counter() - t0
    gp, n = FixedGP(model, X, y), len(y)
    print(f"{n} labels; fitted on all of them in {fit_s:.0f} s: {model.kernel_}", flush=True)
    rng = np.random.default_rng(0)
    sizes = range(args.start, min(args.budget, n) + 1)
    designs = {
        "sequential ivr": curve(gp, n, gp.integrated_variance, sizes, rng, False, args.target_mae),
        "I-optimal": curve(gp, n, gp.integrated_variance, sizes, rng, True, args.target_mae),
        "clairvoyant": curve(gp, n, gp.mae, sizes, rng, True, args.target_mae),
    }
    random = random_labels_to(gp, n, args.target_mae, args.repeats, min(args.budget, n))
    reached = [v for v in random if v is not None]
    random_median = float(np.median(reached)) if len(reached) > len(random) / 2 else None
    campaign = load(f"sample_efficiency_{args.name}")
    campaign_random = campaign["summary"]["random"]["median_labels_to_mae"] if campaign else None
    result = {"oracle": args.oracle, "campaign": config.campaign.name, "labels": n, "target_mae": args.target_mae,
              "kernel": str(model.kernel_), "fit_seconds": fit_s, "random_labels_to_mae": random,
              "random_median": random_median, "campaign_random_median": campaign_random,
              "designs": {k: {"curve": v, "labels_to_mae": first_reaching(v, args.target_mae)}
                          for k, v in designs.items()},
              "model": config.model.model_dump(mode="json"),
              "command": command("design_bound")}
    path = save(f"design_bound_{args.name}", result)
    print(f"random with these hyperparameters: median {random_median} labels to MAE {args.target_mae} eV ({random})")
    if campaign_random:
        print(f"random in the campaign's replay (hyperparameters learned): {campaign_random} labels")
    for k, d in result["designs"].items():
        print(f"  {k:15s} labels to MAE {args.target_mae}: {d['labels_to_mae']}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
