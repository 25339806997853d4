"""Probe overhead of the lc-phases-mnist preset: training time per step without probes, each
probe's time per measurement at a few stages of training, and the overhead over the whole run
(each probe's measurements on its schedule x its mean time) as a share of training time.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_paper_overhead.py [PRESET] [STEPS]
"""

import sys
import time

import numpy as np
import torch

from splinescope.monitor import ProbeContext
from splinescope.presets import preset_config
from splinescope.train import load_data, make_loss, make_model, make_optimizer, make_probes
from splinescope.train.build import BatchSampler

torch.set_num_threads(1)
name = sys.argv[1] if len(sys.argv) > 1 else "lc-phases-mnist"
config = preset_config(name)
total_steps = int(sys.argv[2]) if len(sys.argv) > 2 else config.steps
data = load_data(config)
torch.manual_seed(config.seed)
model = make_model(config, data)
opt = make_optimizer(config, model)
loss_fn = make_loss(config.loss)
sampler = BatchSampler(data.n_train, config.batch_size, seed=1)
ctx = ProbeContext.from_data(data, loss_fn=loss_fn, n_random=config.n_random, seed=config.seed)
probes = make_probes(config)
times: dict[str, list[float]] = {p.name: [] for p, _ in probes}


def train(n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        idx = sampler.next()
        loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - began) / n


def measure(stage: str) -> None:
    for probe, _ in probes:
        began = time.perf_counter()
        probe.compute(model, ctx.restricted(probe.needs))
        times[probe.name].append(time.perf_counter() - began)
    print(stage, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)


measure("init")
per_step = []
for stage in (100, 1000, 4000):
    done = sum(s for s in (100, 1000, 4000) if s < stage)
    per_step.append(train(stage - done))
    measure(f"step {stage}")
ms = float(np.median(per_step)) * 1e3
train_s = ms * total_steps / 1e3
print(f"training: {ms:.2f} ms/step -> {train_s:.0f} s for {total_steps:,} steps (no probes)")
overhead = 0.0
for probe, schedule in probes:
    n = len(schedule.steps_until(total_steps))
    cost = n * float(np.mean(times[probe.name]))
    overhead += cost
    print(
        f"  {probe.name:12s} {n:3d} measurements x {np.mean(times[probe.name]):6.2f} s = {cost:6.0f} s"
    )
print(f"probes: {overhead:.0f} s = {100 * overhead / train_s:.0f} % of training time")
