#!/usr/bin/env python3
"""Sample efficiency against Optuna, side by side in one run (Debian's python3-optuna).

Branin, Hartmann6, Levy-5D, Ackley-5D, Rosenbrock-5D; 100 trials each, 4 in parallel
(ask 4, tell 4); 20 seeds. Final regret = best found - known optimum; median and quartiles.
Also the cost of one suggestion after 1,000 finished trials (6 parameters), Trainyard's
tpe against Optuna's TPE, and gp's cost at 100, 300 and 1,000 trials.

    /usr/bin/python3 bench/sample_efficiency.py [--seeds 20] [--trials 100]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import time
import warnings

import optuna

from common import ROOT

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
BENCH = os.environ.get("SAMPLER_BENCH", os.path.join(ROOT, "build", "bin", "sampler_bench"))


def branin(x):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(x):
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))


def levy(x):
    w = [1 + (v - 1) / 4 for v in x]
    s = math.sin(math.pi * w[0]) ** 2
    for i in range(len(x) - 1):
        s += (w[i] - 1) ** 2 * (1 + 10 * math.sin(math.pi * w[i] + 1) ** 2)
    return s + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)


def ackley(x):
    d = len(x)
    return (-20 * math.exp(-0.2 * math.sqrt(sum(v * v for v in x) / d))
            - math.exp(sum(math.cos(2 * math.pi * v) for v in x) / d) + 20 + math.e)


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (x[i] - 1) ** 2 for i in range(len(x) - 1))


FUNCTIONS = {
    "branin": ([(-5, 10), (0, 15)], 0.397887, branin),
    "hartmann6": ([(0, 1)] * 6, -3.32237, hartmann6),
    "levy5": ([(-10, 10)] * 5, 0.0, levy),
    "ackley5": ([(-32.768, 32.768)] * 5, 0.0, ackley),
    "rosenbrock5": ([(-5, 10)] * 5, 0.0, rosenbrock),
}


def optuna_sampler(name, seed):
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          warn_independent_sampling=False)
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def run_optuna(fname, name, seed, trials, batch):
    bounds, opt, f = FUNCTIONS[fname]
    study = optuna.create_study(sampler=optuna_sampler(name, seed))
    best = math.inf
    for start in range(0, trials, batch):
        # Ask 4 (each suggestion made while the earlier ones are running), then tell 4.
        asked = []
        for _ in range(min(batch, trials - start)):
            t = study.ask()
            asked.append((t, [t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]))
        for t, x in asked:
            v = f(x)
            best = min(best, v)
            study.tell(t, v)
    return best - opt


def optuna_suggest_cost():
    """ms per TPE suggestion once 1,000 random trials of Hartmann6 are finished."""
    import random
    bounds, _, f = FUNCTIONS["hartmann6"]
    rng = random.Random(7)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, multivariate=True, constant_liar=True))
    for _ in range(1000):
        x = [rng.uniform(lo, hi) for lo, hi in bounds]
        study.add_trial(optuna.trial.create_trial(params={f"x{i}": v for i, v in enumerate(x)}, distributions=dists,
                                                  value=f(x)))
    reps, t0 = 5, time.perf_counter()
    for _ in range(reps):
        t = study.ask()
        for i, (lo, hi) in enumerate(bounds):
            t.suggest_float(f"x{i}", lo, hi)
        study.tell(t, state=optuna.trial.TrialState.FAIL)
    return (time.perf_counter() - t0) / reps * 1e3


def summary(xs):
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    a = ap.parse_args()
    results = {}
    out = subprocess.run([BENCH, "regret", "--seeds", str(a.seeds), "--trials", str(a.trials)], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        results.setdefault((r["function"], r["sampler"]), []).append(r["regret"])
    for fname in FUNCTIONS:
        for name in ("random", "tpe", "cmaes"):
            results[(fname, f"optuna-{name}")] = [run_optuna(fname, name, s, a.trials, 4) for s in range(a.seeds)]

    samplers = ["trainyard-random", "trainyard-sobol", "trainyard-tpe", "trainyard-gp", "trainyard-cmaes",
                "optuna-random", "optuna-tpe", "optuna-cmaes"]
    print(f"final regret after {a.trials} trials (4 in parallel), {a.seeds} seeds: median [q1, q3]")
    print("| function | " + " | ".join(samplers) + " |")
    print("|---" * (len(samplers) + 1) + "|")
    wins = 0
    tpe_ok = True
    for fname in FUNCTIONS:
        cells = []
        for s in samplers:
            q1, med, q3 = summary(results[(fname, s)])
            cells.append(f"{med:.3g} [{q1:.3g}, {q3:.3g}]")
        print(f"| {fname} | " + " | ".join(cells) + " |")
        opt_tpe = statistics.median(results[(fname, "optuna-tpe")])
        ours_tpe = statistics.median(results[(fname, "trainyard-tpe")])
        best_ours = min(statistics.median(results[(fname, s)]) for s in samplers if s.startswith("trainyard"))
        tpe_ok &= ours_tpe <= opt_tpe
        if best_ours * 2 <= opt_tpe:
            wins += 1
        print(f"|   ratio | trainyard-tpe / optuna-tpe = {ours_tpe / opt_tpe:.2f}; "
              f"best trainyard / optuna-tpe = {best_ours / opt_tpe:.3f} |")
    print(f"trainyard tpe no worse than optuna tpe on every function: {tpe_ok}")
    print(f"functions where trainyard's best sampler has >= 2x lower median regret than optuna tpe: {wins} of 5")

    cost = [json.loads(l) for l in subprocess.run([BENCH, "cost"], check=True, capture_output=True,
                                                  text=True).stdout.splitlines()]
    optuna_ms = optuna_suggest_cost()
    ours = next(c["ms"] for c in cost if c["sampler"] == "tpe")
    print(f"suggestion after 1000 trials (6 params): trainyard tpe {ours:.2f} ms, optuna tpe {optuna_ms:.1f} ms, "
          f"{optuna_ms / ours:.0f}x faster (target >= 20x)")
    for c in cost:
        if c["sampler"] == "gp":
            print(f"gp suggestion after {c['history']} trials: {c['ms']:.1f} ms")


if __name__ == "__main__":
    main()
