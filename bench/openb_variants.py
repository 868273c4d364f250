#!/usr/bin/env python3
"""Builds openb pod-list variants with the recipe of the Alibaba openb trace
(cluster-trace-gpu-v2023): each variant is the default pod list with one kind
of task re-weighted, every task drawn from the default list.

  cpuNNN      the default GPU tasks plus CPU-only tasks drawn with replacement
              until they are NNN/10 % of all tasks (cpu200: 20 %)
  gpushareNN  the default CPU-only tasks plus as many GPU tasks as the default,
              drawn so that GPU-sharing tasks carry NN % of the GPU demand
  multigpuNN  the same, with multi-GPU tasks carrying NN % of the GPU demand
  gpuspecNN   the default tasks; NN % of the GPU tasks take the model
              constraint (gpu_spec) that gpuspec33 gives the same task

Usage: bench/openb_variants.py --data bench/data/openb --out /tmp/variants \\
           [--seed 7] [--variants cpu200,gpushare60,...]
Writes OUT/openb_pod_list_<variant>.csv and a copy of the node list, so that
`placement_report --data OUT --traces <variant>` reads them.
"""
import argparse
import csv
import os
import random
import shutil

COLUMNS = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"]
DEFAULT_VARIANTS = ("cpu100,cpu200,cpu250,cpu300,gpushare60,gpushare90,multigpu30,multigpu40,"
                    "multigpu50,gpuspec10,gpuspec20,gpuspec25")


def demand(row):
    return int(row["num_gpu"]) * int(row["gpu_milli"])


def sharing(row):
    return row["num_gpu"] == "1" and int(row["gpu_milli"]) < 1000


def multi(row):
    return int(row["num_gpu"]) > 1


def draw_by_demand_share(rng, pool_in, pool_out, count, share):
    """`count` tasks, from pool_in and pool_out, pool_in carrying `share` of the demand."""
    mean_in = sum(map(demand, pool_in)) / len(pool_in)
    mean_out = sum(map(demand, pool_out)) / len(pool_out)
    n_in = round(share * count * mean_out / (mean_in * (1 - share) + share * mean_out)) \
        if share < 1 else count
    return [rng.choice(pool_in) for _ in range(n_in)] + \
        [rng.choice(pool_out) for _ in range(count - n_in)]


def build(variant, default, spec33, rng):
    cpu_only = [r for r in default if r["num_gpu"] == "0"]
    gpu = [r for r in default if r["num_gpu"] != "0"]
    if variant.startswith("cpu"):
        share = int(variant[3:]) / 1000
        extra = round(share * len(gpu) / (1 - share))
        return gpu + [rng.choice(cpu_only) for _ in range(extra)]
    if variant.startswith("gpushare"):
        share = int(variant[8:]) / 100
        return cpu_only + draw_by_demand_share(rng, [r for r in gpu if sharing(r)],
                                               [r for r in gpu if not sharing(r)], len(gpu), share)
    if variant.startswith("multigpu"):
        share = int(variant[8:]) / 100
        return cpu_only + draw_by_demand_share(rng, [r for r in gpu if multi(r)],
                                               [r for r in gpu if not multi(r)], len(gpu), share)
    if variant.startswith("gpuspec"):
        share = int(variant[7:]) / 100
        constrained = [r["name"] for r in default if r["num_gpu"] != "0" and spec33[r["name"]]]
        want = round(share * len(gpu))
        if want > len(constrained):
            raise SystemExit(f"{variant}: gpuspec33 constrains only {len(constrained)} GPU tasks")
        chosen = set(rng.sample(constrained, want))
        return [dict(r, gpu_spec=spec33[r["name"]] if r["name"] in chosen else "") for r in default]
    raise SystemExit(f"unknown variant {variant} (cpuNNN, gpushareNN, multigpuNN, gpuspecNN)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with the openb default, gpuspec33 "
                        "and node lists (bench/data/openb)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    args = parser.parse_args()
    with open(os.path.join(args.data, "openb_pod_list_default.csv"), newline="") as f:
        default = list(csv.DictReader(f))
    with open(os.path.join(args.data, "openb_pod_list_gpuspec33.csv"), newline="") as f:
        spec33 = {r["name"]: r["gpu_spec"] for r in csv.DictReader(f)}
    os.makedirs(args.out, exist_ok=True)
    shutil.copy(os.path.join(args.data, "openb_node_list_gpu_node.csv"), args.out)
    for variant in args.variants.split(","):
        rng = random.Random(f"{args.seed}/{variant}")
        rows = build(variant, default, spec33, rng)
        rng.shuffle(rows)
        path = os.path.join(args.out, f"openb_pod_list_{variant}.csv")
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(COLUMNS)
            for i, r in enumerate(rows):
                out.writerow([f"openb-pod-{i:04d}"] + [r.get(c, "") for c in COLUMNS[1:]])
        print(f"{path}: {len(rows)} tasks")


if __name__ == "__main__":
    main()
