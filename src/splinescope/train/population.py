"""A population: K runs of one MLP architecture trained at once as stacked parameters.

For sweeps over seeds and scalar hyper-parameters (``seed``, ``init_scale``,
``weight_decay``, ``lr``), the K members' weights live in tensors ``[K, *shape]`` and one
step is a batched forward and backward (``torch.baddbmm`` per ``nn.Linear``, each member on
its own mini-batch) and one batched AdamW update with per-member ``lr`` and weight decay.
Everything else is each member's own, exactly as in a separate :func:`~splinescope.train.train`
run: its run row and config in the store, its data order (its :class:`BatchSampler` seeded
``seed + 1``), its Monitor and probes at the same steps, its checkpoints and snapshots
(written with its own ``nn.Module`` and ``torch.optim.AdamW``, so they load like any run's),
its global RNG state (set around each of its probe calls), its divergence, status and
phenomena summary.

Exactness: the batched update repeats torch's single-tensor AdamW operation by operation
(``mul_``, ``lerp_``, ``mul_``/``addcmul_``, ``sqrt``, ``div``, ``add_``, then the step),
with the per-member scalars computed in double and rounded to the parameter's dtype as torch
rounds its Python scalars, so for equal gradients it is bit-identical. ``baddbmm``/``bmm``
per batch element equal ``addmm``/``mm`` bit for bit with this build's MKL on the shapes
tested (tests/train/test_population.py compares whole runs, store entries included); another
BLAS may differ in the last bits, which the tests' stated tolerance covers.

Which configs can share a population: :func:`population_key` (None when a config cannot).
"""

from __future__ import annotations

import math
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from splinescope.errors import SplinescopeError
from splinescope.monitor.monitor import Monitor
from splinescope.monitor.probe import ProbeContext
from splinescope.store.checkpoints import (
    checkpoint_path,
    save_checkpoint,
    save_snapshot,
    save_snapshot_spec,
    snapshot_path,
)
from splinescope.train.build import (
    BatchLoss,
    BatchSampler,
    data_spec,
    load_data,
    make_loss,
    make_model,
    make_optimizer,
    make_probes,
    make_schedule,
    model_spec,
)
from splinescope.train.config import TrainConfig
from splinescope.train.divergence import Divergence, check_loss, check_parameters
from splinescope.train.loop import (
    TrainResult,
    _summarise,
    check_runs_dir,
    open_run,
    resumable_run,
)
from splinescope.train.signals import Interrupted, StopRequests

#: The config fields members of one population may differ in (``name`` and
#: ``description`` are labels).
MEMBER_FIELDS = ("name", "description", "seed", "init_scale", "weight_decay", "lr")


def population_key(config: TrainConfig) -> str | None:
    """A key equal for configs that can be trained in one population, or None when this
    config cannot be (not an MLP trained with AdamW)."""
    if config.model != "mlp" or config.optimizer != "adamw":
        return None
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    return repr(sorted(shared.items()))


def check_population(configs: Sequence[TrainConfig]) -> None:
    """Raise SplinescopeError naming the field when ``configs`` cannot share a population."""
    if not configs:
        raise SplinescopeError("population: no configs given")
    for i, config in enumerate(configs):
        if population_key(config) is None:
            raise SplinescopeError(
                f"population: member {i} ({config.name!r}) is a {config.model} trained with "
                f"{config.optimizer}; a population trains MLPs with AdamW only"
            )
    first = configs[0].to_dict()
    for i, config in enumerate(configs[1:], start=1):
        other = config.to_dict()
        diff = sorted(k for k in first if k not in MEMBER_FIELDS and first[k] != other[k])
        if diff:
            raise SplinescopeError(
                f"population: member {i} ({config.name!r}) differs from member 0 in "
                f"{', '.join(diff)}; members may differ only in {', '.join(MEMBER_FIELDS[2:])}"
            )


@dataclass
class _Member:
    """One run of the population: what a separate run would hold, plus its outcome."""

    index: int
    config: TrainConfig
    run_id: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    sampler: BatchSampler
    monitor: Monitor
    rng: torch.Tensor
    start: int
    adam_step: float
    divergence: Divergence | None = None
    step: int = -1
    active: bool = True
    outcome: TrainResult | BaseException | None = None
    began: float = field(default_factory=time.perf_counter)
    data: Any = None
    slot: int = 0  # position in its group's stacked tensors


class _StackedLinear(torch.autograd.Function):
    """``h [K, B, in] -> baddbmm(bias [K, 1, out], h, W^T)`` with the backward a separate
    ``addmm`` has, per member: ``grad_h = g @ W``, ``grad_W = g^T @ h`` (computed in W's own
    layout, so no transposed copy is made), ``grad_bias = g.sum(batch)``."""

    @staticmethod
    def forward(ctx, h, weight, bias):  # noqa: ANN001, ANN205 - autograd's signature
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205 - autograd's signature
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), h) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_h, grad_w, grad_b


class StackedMLP:
    """The stacked weights ``[K, *shape]`` of K MLPs of one architecture and their batched
    forward: ``x [K, B, *input_shape] -> logits [K, B, n_classes]``, each member exactly as
    its own module would compute it (``baddbmm`` for ``addmm``, the same activation)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        template = models[0]
        self.layers: list[tuple[str, Any]] = []
        names = [name for name, _ in template.named_parameters()]
        for name, module in template.named_children():
            if isinstance(module, nn.Flatten):
                if module.start_dim != 1 or module.end_dim != -1:
                    raise SplinescopeError(f"population: module {name!r} must flatten dim 1..-1")
                self.layers.append(("flatten", None))
            elif isinstance(module, nn.Linear):
                self.layers.append(("linear", name))
            elif len(list(module.parameters())) == 0 and len(list(module.buffers())) == 0:
                self.layers.append(("pointwise", module))
            else:
                raise SplinescopeError(
                    f"population: module {name!r} ({type(module).__name__}) cannot be stacked"
                )
        self.names = names
        with torch.no_grad():
            self.params = [
                torch.stack([dict(m.named_parameters())[n].detach() for m in models])
                .clone()
                .requires_grad_(True)
                for n in names
            ]
        self._by_name = dict(zip(names, self.params, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, B, C]`` of inputs ``[K, B, *input_shape]`` (member k on ``x[k]``)."""
        h = x
        for kind, what in self.layers:
            if kind == "flatten":
                h = h.reshape(h.shape[0], h.shape[1], -1)
            elif kind == "linear":
                weight = self._by_name[f"{what}.weight"]
                h = _StackedLinear.apply(h, weight, self._by_name.get(f"{what}.bias"))
            elif type(what) is nn.ReLU:
                h = torch.relu_(h)  # in place on the linear's output: no copy, same values
            else:
                h = what(h)
        return h

    def load_into(self, k: int, model: nn.Module) -> None:
        """Copy member ``k``'s weights into ``model`` (an instance of the architecture)."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self._by_name[name][k])


class StackedAdamW:
    """K ``torch.optim.AdamW`` (decoupled weight decay, amsgrad off) over stacked tensors,
    with per-member ``lr`` and ``weight_decay``; bit-identical to K separate optimizers.

    ``fused=False`` repeats torch's single-tensor implementation op by op on the stacked
    tensors; ``fused=True`` calls torch's fused kernel (``torch._fused_adamw_``) on the
    members' slices, one call per distinct ``(lr, weight_decay)``, so each slice gets exactly
    the arithmetic of a separate ``AdamW(fused=True)``. ``step_t`` counts updates as torch
    does (a float32 tensor), so the bias corrections match.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        *,
        lr: Sequence[float],
        weight_decay: Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        exp_avg: Sequence[torch.Tensor] | None = None,
        exp_avg_sq: Sequence[torch.Tensor] | None = None,
        step: float = 0.0,
        fused: bool = False,
    ) -> None:
        self.params = list(params)
        self.fused = bool(fused)
        k = self.params[0].shape[0]
        if len(lr) != k or len(weight_decay) != k:
            raise SplinescopeError(f"StackedAdamW: lr and weight_decay need {k} values each")
        self.lr = torch.tensor(list(lr), dtype=torch.float64)
        self.weight_decay = torch.tensor(list(weight_decay), dtype=torch.float64)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.step_t = torch.tensor(float(step), dtype=torch.float32)
        self.exp_avg = [
            torch.zeros_like(p) if exp_avg is None else exp_avg[i].clone()
            for i, p in enumerate(self.params)
        ]
        self.exp_avg_sq = [
            torch.zeros_like(p) if exp_avg_sq is None else exp_avg_sq[i].clone()
            for i, p in enumerate(self.params)
        ]
        self._tmp = [torch.empty_like(p) for p in self.params]
        self._tmp2 = [torch.empty_like(p) for p in self.params]
        # 1 - lr * wd per member, in double then rounded as torch rounds a Python scalar
        decay = 1.0 - self.lr * self.weight_decay
        self._decay = [self._per_member(decay, p) for p in self.params]
        self._decays = bool((self.weight_decay != 0).any())
        by_setting: dict[tuple[float, float], list[int]] = {}
        for i, (a, b) in enumerate(zip(lr, weight_decay, strict=True)):
            by_setting.setdefault((float(a), float(b)), []).append(i)
        self._settings = [
            (a, b, members, self._slices(self.params, members))
            for (a, b), members in by_setting.items()
        ]

    @staticmethod
    def _slices(tensors: Sequence[torch.Tensor], members: Sequence[int]) -> list[torch.Tensor]:
        """Member slices ``t[k]`` of each tensor, member-major (a separate run's order)."""
        return [t[k] for k in members for t in tensors]

    @torch.no_grad()
    def _fused_step(self) -> None:
        self.step_t += 1
        for lr, weight_decay, members, params in self._settings:
            n = len(params)
            torch._fused_adamw_(
                params,
                self._slices([p.grad for p in self.params], members),
                self._slices(self.exp_avg, members),
                self._slices(self.exp_avg_sq, members),
                [],
                [self.step_t] * n,
                amsgrad=False,
                lr=lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=weight_decay,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    @staticmethod
    def _per_member(values: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return values.to(p.dtype).to(p.device).view(-1, *([1] * (p.dim() - 1)))

    @torch.no_grad()
    def step(self) -> None:
        """One update of every member from the parameters' ``.grad``."""
        if self.fused:
            self._fused_step()
            return
        self.step_t += 1
        step = self.step_t.item()
        bias_correction1 = 1 - self.beta1**step
        bias_correction2_sqrt = (1 - self.beta2**step) ** 0.5
        neg_step = -(self.lr / bias_correction1)  # per member, double (torch: -lr / bc1)
        for i, p in enumerate(self.params):
            grad = p.grad
            exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
            if self._decays:
                # torch skips the multiply when wd == 0; multiplying by exactly 1.0 is exact
                p.mul_(self._decay[i])
            exp_avg.lerp_(grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            denom = torch.sqrt(exp_avg_sq, out=self._tmp[i])
            denom.div_(bias_correction2_sqrt).add_(self.eps)
            # addcdiv_(exp_avg, denom, value=s) computes p + (s * exp_avg) / denom
            update = torch.mul(exp_avg, self._per_member(neg_step, p), out=self._tmp2[i])
            p.add_(update.div_(denom))

    def load_member_state(self, k: int, optimizer: torch.optim.Optimizer) -> None:
        """Write member ``k``'s moments and step into ``optimizer`` (a torch AdamW over the
        member's module), so that its ``state_dict()`` is a separate run's."""
        if self.step_t.item() == 0:
            optimizer.state.clear()
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for i, p in enumerate(params):
            optimizer.state[p] = {
                "step": self.step_t.clone(),
                "exp_avg": self.exp_avg[i][k].clone(),
                "exp_avg_sq": self.exp_avg_sq[i][k].clone(),
            }


def _adam_settings(member: _Member) -> dict[str, Any]:
    """The member's torch AdamW settings (its param group), refused where the population's
    update would differ (foreach, amsgrad, maximize, capturable, differentiable, >1 group)."""
    groups = member.optimizer.param_groups
    if not isinstance(member.optimizer, torch.optim.AdamW) or len(groups) != 1:
        raise SplinescopeError(
            f"population: run {member.run_id} needs one torch.optim.AdamW param group"
        )
    group = groups[0]
    for flag in ("foreach", "amsgrad", "maximize", "capturable", "differentiable"):
        if group.get(flag):
            raise SplinescopeError(
                f"population: run {member.run_id}'s AdamW has {flag}=True, which the stacked "
                "update does not reproduce; train it alone"
            )
    return group


def _member_moments(optimizer: torch.optim.Optimizer) -> tuple[list | None, list | None, float]:
    """``(exp_avg list, exp_avg_sq list, step)`` of a torch AdamW, None lists if never stepped."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not optimizer.state:
        return None, None, 0.0
    states = [optimizer.state[p] for p in params]
    step = float(states[0]["step"])
    return [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], step


def _setup_member(
    index: int,
    config: TrainConfig | None,
    resume: str | None,
    runs_dir: Path,
    store: Any,
    strict: bool,
    on_start: Callable[[int, str], None] | None,
) -> _Member:
    """Everything a separate run builds before its first step, in the same order and from
    the same global RNG stream (``torch.manual_seed(seed)`` first)."""
    row = None
    if resume is not None:
        row, config = resumable_run(runs_dir, resume)
    torch.manual_seed(config.seed)
    data = load_data(config)
    device = torch.device(config.device)
    model = make_model(config, data).to(device)
    optimizer = make_optimizer(config, model)
    loss_fn = make_loss(config.loss)
    sampler = BatchSampler(data.n_train, config.batch_size, seed=config.seed + 1)
    context = ProbeContext.from_data(
        data, loss_fn=loss_fn, n_random=config.n_random, seed=config.seed, device=device
    )
    probes = make_probes(config)
    run_id, start, monitor_state = open_run(
        store, runs_dir, config, device, row, model=model, optimizer=optimizer, sampler=sampler
    )
    if on_start is not None:
        on_start(index, run_id)
    monitor = Monitor(
        model, probes, store, make_schedule(config), context=context, run_id=run_id, strict=strict
    )
    if monitor_state:
        monitor.load_state_dict(monitor_state)
    if config.checkpoint:
        save_snapshot_spec(runs_dir, run_id, model_spec(config, data), data_spec(config))
    member = _Member(
        index=index,
        config=config,
        run_id=run_id,
        model=model,
        optimizer=optimizer,
        sampler=sampler,
        monitor=monitor,
        rng=torch.get_rng_state(),
        start=start,
        adam_step=_member_moments(optimizer)[2],
        data=data,
    )
    return member


def train_population(
    configs: Sequence[TrainConfig | None],
    *,
    runs_dir: str | Path = "runs",
    resume: Sequence[str | None] | None = None,
    strict: bool = False,
    stop_after: int | None = None,
    on_start: Callable[[int, str], None] | None = None,
) -> list[TrainResult | BaseException]:
    """Train K runs at once; member k is what ``train(configs[k], resume=resume[k])`` does.

    Args:
        configs: the members' configs (``None`` where ``resume`` names the run); they may
            differ only in :data:`MEMBER_FIELDS` (checked: SplinescopeError naming the field).
        runs_dir: the runs directory (one store for all members).
        resume: per member, a run to continue from its checkpoint (or None). Members whose
            checkpoints are at different steps are trained as one population per step.
        strict: re-raise probe errors (that member fails, the others go on).
        stop_after: stop every member after this step as SIGINT would.
        on_start: called with ``(k, run_id)`` as soon as member k's run exists.

    Returns:
        Per member, its :class:`TrainResult`, or the exception that ended it (its run is then
        marked "crashed" like a separate run's). A stop request (SIGINT/SIGTERM/SIGHUP, or
        ``stop_after``) checkpoints every member at the current step, marks them
        "interrupted" and raises :class:`~splinescope.train.signals.Interrupted`.
    """
    from splinescope.store import RunStore

    resume = list(resume) if resume is not None else [None] * len(configs)
    if len(resume) != len(configs):
        raise SplinescopeError(
            f"train_population: {len(configs)} configs but {len(resume)} resume entries"
        )
    for k, (config, again) in enumerate(zip(configs, resume, strict=True)):
        if config is None and again is None:
            raise SplinescopeError(f"train_population: member {k} has neither config nor resume")
    check_population([c for c in configs if c is not None] or [TrainConfig()])
    runs_dir = check_runs_dir(runs_dir)
    members: list[_Member] = []
    outcomes: list[TrainResult | BaseException | None] = [None] * len(configs)
    with StopRequests() as stops:
        store = RunStore(runs_dir)
        try:
            for k, (config, again) in enumerate(zip(configs, resume, strict=True)):
                try:
                    members.append(
                        _setup_member(k, config, again, runs_dir, store, strict, on_start)
                    )
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 - that member fails, with its reason
                    outcomes[k] = exc
            if members:
                check_population([m.config for m in members])  # resumed configs too
            stops.check()
            # one population per start step and AdamW kernel (a resumed optimizer keeps the
            # implementation it was saved with)
            keys = sorted({(m.start, bool(_adam_settings(m)["fused"])) for m in members})
            for key in keys:
                group = [m for m in members if (m.start, bool(_adam_settings(m)["fused"])) == key]
                _train_group(group, runs_dir, store, stops, stop_after)
                for m in group:
                    outcomes[m.index] = m.outcome
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "crashed"
            for m in members:
                if not m.monitor.closed:
                    m.monitor.close(status)
            raise
        finally:
            store.close()
    return [o if o is not None else SplinescopeError("member did not run") for o in outcomes]


def _fail(member: _Member, exc: BaseException) -> None:
    """End one member as a separate run that raised ``exc`` ends: status "crashed"."""
    member.active = False
    member.outcome = exc
    try:
        member.monitor.close("crashed")
    except Exception:  # noqa: BLE001 - the member's own error is the one to report
        pass


def _finish(member: _Member, runs_dir: Path, store: Any) -> None:
    """What a separate run does after its loop: the phenomena summary, the final status."""
    try:
        summary = _summarise(runs_dir, member.run_id, store)
    except Exception as exc:  # noqa: BLE001 - recorded, as train() records it
        store.log_error(
            member.run_id,
            member.step,
            "phenomena",
            f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
        )
        summary = {}
    member.monitor.close("diverged" if member.divergence is not None else "finished")
    member.active = False
    member.outcome = TrainResult(
        run_id=member.run_id,
        step=member.step,
        summary=summary,
        latest=member.monitor.latest,
        seconds=time.perf_counter() - member.began,
        probe_errors=member.monitor.errors,
        divergence=member.divergence,
    )


def _keep(member: _Member, stack: StackedMLP, adam: StackedAdamW, runs_dir: Path, step: int):
    """Member's checkpoint at ``step``: its module, its torch AdamW state, its sampler,
    monitor and global RNG state, written as a separate run writes them."""
    stack.load_into(member.slot, member.model)
    adam.load_member_state(member.slot, member.optimizer)
    save_checkpoint(
        checkpoint_path(runs_dir, member.run_id),
        step=step,
        model=member.model,
        optimizer=member.optimizer,
        sampler_state=member.sampler.state_dict(),
        monitor_state=member.monitor.state_dict(),
    )


def _train_group(
    group: list[_Member],
    runs_dir: Path,
    store: Any,
    stops: StopRequests,
    stop_after: int | None,
) -> None:
    """The training loop of :func:`~splinescope.train.loop.train`, for members that start at
    the same step, stacked."""
    config = group[0].config
    for i, m in enumerate(group):
        m.slot = i
        m.model.train()
    stack = StackedMLP([m.model for m in group])
    moments = [_member_moments(m.optimizer) for m in group]
    has_state = moments[0][0] is not None
    settings = [_adam_settings(m) for m in group]
    adam = StackedAdamW(
        stack.params,
        lr=[g["lr"] for g in settings],
        weight_decay=[g["weight_decay"] for g in settings],
        betas=settings[0]["betas"],
        eps=settings[0]["eps"],
        fused=bool(settings[0]["fused"]),
        exp_avg=[torch.stack(t) for t in zip(*[mo[0] for mo in moments], strict=True)]
        if has_state
        else None,
        exp_avg_sq=(
            [torch.stack(t) for t in zip(*[mo[1] for mo in moments], strict=True)]
            if has_state
            else None
        ),
        step=moments[0][2],
    )
    data = group[0].data
    device = torch.device(config.device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    batch_loss = BatchLoss(config.loss, y_train)
    start = group[0].start
    step = start - 1
    for m in group:
        m.step = step
    for step in range(start, config.steps + 1):
        live = [m for m in group if m.active]
        if not live:
            break
        found: dict[int, Divergence | None] = {}
        if step > 0:
            index = torch.stack([m.sampler.next() for m in group])
            values = forward_backward(stack, x_train[index], index, batch_loss)
            adam.step()
            norms = _member_norms(stack.params)
            for m in live:
                i = m.slot
                hit = check_loss(step, values[i])
                if hit is None and not math.isfinite(norms[i]):
                    stack.load_into(i, m.model)
                    hit = check_parameters(step, m.model)
                found[i] = hit
                m.step = step
                if hit is not None and m.divergence is None:
                    m.divergence = hit
                    store.set_divergence(m.run_id, hit.step, hit.tensor, hit.value)
                if hit is not None and m.config.on_divergence == "stop":
                    # the separate run stops before this step's update; nothing it stores
                    # afterwards reads the weights
                    _finish(m, runs_dir, store)
        else:
            for m in live:
                m.step = step
        if stop_after is not None and step >= stop_after and stops.signum is None:
            stops.signum = signal.SIGINT
        for m in [m for m in group if m.active]:
            i = m.slot
            try:
                measured = bool(m.monitor.due(step))
                if measured:
                    stack.load_into(i, m.model)
                    torch.set_rng_state(m.rng)
                measured = m.monitor.step(step) is not None
                if measured and m.config.checkpoint:
                    _keep(m, stack, adam, runs_dir, step)
                    save_snapshot(snapshot_path(runs_dir, m.run_id, step), m.model)
                if stops.signum is not None and m.config.checkpoint and not measured:
                    torch.set_rng_state(m.rng)
                    _keep(m, stack, adam, runs_dir, step)
                m.rng = torch.get_rng_state() if measured else m.rng
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - this member crashes, the others go on
                _fail(m, exc)
        if stops.signum is not None:
            for m in group:
                if m.active:
                    m.monitor.close("interrupted")
                    m.active = False
            raise Interrupted(stops.signum)
    for m in group:
        if m.active:
            _finish(m, runs_dir, store)


def forward_backward(
    stack: StackedMLP, x: torch.Tensor, index: torch.Tensor, batch_loss: BatchLoss
) -> list[float]:
    """Each member's loss on its batch (``x [K, B, *input_shape]``, ``index [K, B]`` into the
    training set that ``batch_loss`` holds the labels of) as Python floats, with the gradients
    in the stacked parameters' ``.grad``."""
    logits = stack.forward(x)
    losses = torch.stack(
        [batch_loss(lg, i) for lg, i in zip(logits.unbind(0), index.unbind(0), strict=True)]
    )
    values = losses.tolist()
    for p in stack.params:
        p.grad = None
    losses.sum().backward()  # d(sum)/d(member loss) = 1: each member's own gradient
    return values


def _member_norms(params: Sequence[torch.Tensor]) -> list[float]:
    """Per member, the sum of its parameters' 2-norms (finite iff all entries are, unless a
    norm overflows, in which case :func:`check_parameters` decides)."""
    with torch.no_grad():
        total = sum(
            torch.linalg.vector_norm(p.detach().flatten(1), dim=1).to(torch.float32) for p in params
        )
    return total.tolist()


__all__ = [
    "MEMBER_FIELDS",
    "StackedAdamW",
    "StackedMLP",
    "check_population",
    "population_key",
    "train_population",
]
