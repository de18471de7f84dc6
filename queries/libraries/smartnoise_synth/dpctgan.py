"""DP-CTGAN trained the way its accountant assumes, so that its cost reads no row.

smartnoise-synth's own DPCTGAN.train derives its privacy spend from the private row count
(sample rate batch_size / n, steps n // batch_size), draws its real batches uniformly with
replacement, conditioned on category frequencies computed exactly on the rows, and keeps
those frequencies and per-epoch losses in the model it returns. None of that is DP.

Here the discriminator sees Poisson batches: each training row is in a batch independently
with probability q = batch_size / n_public, n_public the metadata's row count. That is the
sampled Gaussian mechanism that Opacus's RDP accountant describes, whatever the number of
rows really is (rows lost or dropped only make batches smaller), so the spend is a function
of the request and the metadata alone. Training is unconditional: the generator is given no
condition vector, and the model keeps an empty DataSampler (no frequencies, no rows). The
model stays a plain snsynth DPCTGAN, which lomas-client unpickles with snsynth alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lomas.errors import InvalidQuery

if TYPE_CHECKING:
    from snsynth.pytorch.nn.dpctgan import DPCTGAN

# The RDP orders snsynth's DPCTGAN gives Opacus.
RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


@dataclass(frozen=True)
class TrainingPlan:
    """What one fit does and spends, fixed from the request and the metadata before any row is read."""

    sample_rate: float  # each row's probability of being in a discriminator batch
    steps_per_epoch: int
    epochs: int  # the epochs that fit within the requested epsilon
    epsilon: float  # spent by epochs * steps_per_epoch sampled Gaussian steps at delta
    delta: float

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def spent_epsilon(*, sample_rate: float, sigma: float, steps: int, delta: float) -> float:
    """Epsilon of `steps` sampled Gaussian steps (Opacus's RDP accountant)."""
    from opacus import privacy_analysis

    rdp = privacy_analysis.compute_rdp(sample_rate, sigma, steps, RDP_ORDERS)
    epsilon, _ = privacy_analysis.get_privacy_spent(RDP_ORDERS, rdp, delta)
    return float(epsilon)


def plan_training(
    *, batch_size: int, public_rows: int, epochs: int, sigma: float, delta: float, epsilon: float
) -> TrainingPlan:
    """The largest number of epochs (at most `epochs`) whose spend stays within `epsilon`."""
    if batch_size > public_rows:
        raise InvalidQuery(
            f"synth_params['batch_size'] must be at most the dataset's published row count ({public_rows})."
        )
    sample_rate = batch_size / public_rows
    steps_per_epoch = max(public_rows // batch_size, 1)

    def spend(n_epochs: int) -> float:
        return spent_epsilon(sample_rate=sample_rate, sigma=sigma, steps=n_epochs * steps_per_epoch, delta=delta)

    if spend(1) > epsilon:
        raise InvalidQuery(
            f"dpctgan: one epoch already spends epsilon {spend(1):.6g} > {epsilon}: "
            "increase epsilon or sigma, or lower batch_size."
        )
    low, high = 1, epochs  # spend() grows with the epochs: the last affordable one by bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if spend(middle) <= epsilon else (low, middle - 1)
    return TrainingPlan(sample_rate, steps_per_epoch, low, spend(low), delta)


def train(model: DPCTGAN, rows: np.ndarray, plan: TrainingPlan) -> None:
    """Train `model` (a DPCTGAN whose _transformer is set) on the encoded rows, as `plan` says.

    Each step: a discriminator update on generated rows (no private data), a DP-SGD update on a
    Poisson batch of real rows (per-row gradients clipped, summed, Gaussian noise added; an empty
    batch is a noise-only step), and a generator update through the discriminator.
    """
    import torch
    from opacus import PrivacyEngine
    from snsynth.pytorch.nn.ctgan.data_sampler import DataSampler
    from snsynth.pytorch.nn.dpctgan import Discriminator, Generator

    width = model._transformer.output_width
    batch_size = model._batch_size
    model._data_sampler = DataSampler(np.zeros((0, 0)), [])  # unconditional: no categories, no rows
    model._generator = Generator(model._embedding_dim, model._generator_dim, width).to(model._device)
    discriminator = Discriminator(width, model._discriminator_dim, model.loss, pac=1).to(model._device)
    torch.seed()  # Discriminator() seeds torch with 0: reseed, or the DP noise would be predictable
    optimizer_g = torch.optim.Adam(
        model._generator.parameters(), lr=model._generator_lr, betas=(0.5, 0.9), weight_decay=model._generator_decay
    )
    optimizer_d = torch.optim.Adam(
        discriminator.parameters(),
        lr=model._discriminator_lr,
        betas=(0.5, 0.9),
        weight_decay=model._discriminator_decay,
    )
    with warnings.catch_warnings():  # Opacus warns that batch_size and sample_size set the rate: they do
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(
            discriminator,
            batch_size=batch_size,
            sample_size=round(batch_size / plan.sample_rate),
            alphas=RDP_ORDERS,
            noise_multiplier=model.sigma,
            max_grad_norm=model.max_per_sample_grad_norm,
            loss_reduction="sum",
        )
        engine.module.remove_hooks()  # Opacus 0.14 hooks for a mean loss whatever loss_reduction says
        engine.module.add_hooks(loss_reduction="sum")
        engine.attach(optimizer_d)
    real = torch.from_numpy(rows.astype("float32")).to(model._device)
    rng = np.random.default_rng()
    cross_entropy = model.loss == "cross_entropy"

    def generated() -> Any:
        noise = torch.normal(mean=torch.zeros(batch_size, model._embedding_dim), std=1.0).to(model._device)
        return model._apply_activate(model._generator(noise))

    def scores_loss(scores: Any, label: float) -> Any:
        """Summed over rows: the loss of each row is its own."""
        scores = scores.squeeze(1)
        if cross_entropy:
            return torch.nn.functional.binary_cross_entropy(scores, torch.full_like(scores, label), reduction="sum")
        return (-scores if label else scores).sum()

    def discriminator_step(batch: Any, label: float, private: bool) -> None:
        optimizer_d.zero_grad()
        engine.module.del_grad_sample()
        if len(batch):
            scores_loss(discriminator(batch), label).backward()
        else:
            for parameter in discriminator.parameters():
                parameter.grad = torch.zeros_like(parameter)
        if private:  # clip each row's gradient, sum, add N(0, (sigma * C)^2)
            engine.step(is_empty=not len(batch))
        for parameter in discriminator.parameters():
            parameter.grad /= batch_size
        optimizer_d.original_step()

    for _ in range(plan.steps):
        discriminator_step(generated().detach(), 0.0, private=False)
        in_batch = np.flatnonzero(rng.random(len(real)) < plan.sample_rate)
        discriminator_step(real[torch.from_numpy(in_batch)], 1.0, private=True)
        optimizer_g.zero_grad()
        loss_g = scores_loss(discriminator(generated()), 1.0) / batch_size
        loss_g.backward()
        optimizer_g.step()
    engine.module.del_grad_sample()
    model.epsilon_list, model.alpha_list, model.loss_d_list, model.loss_g_list = [plan.epsilon], [], [], []
    model.delta = plan.delta
