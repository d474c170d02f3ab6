"""``spiral-gan``: a GAN that draws a spiral (the hub-models plugin template's one model)."""

from dataclasses import dataclass

import torch
from torch import nn

from hub_models import CardInfo, GenerativeModel, Input, TrainingSetup


@dataclass
class SpiralConfig:  # architecture + optimiser settings; every field has a default
    hidden: int = 64
    lr: float = 1e-3


class SpiralGAN(GenerativeModel):
    model_id = "spiral-gan"  # must equal the entry-point name
    Config = SpiralConfig
    output = "points"  # "image" (float N×C×H×W in [0, 1]) or "points" (N×2)
    inputs = (Input("scale", "float", 1.0, minimum=0.1, maximum=3.0),)  # extra generate() args -> CLI/demo
    metrics = ()  # Metric(key, name, protocol, higher_is_better, goal) for evaluate()
    card = CardInfo(summary="A GAN that draws a spiral.", pipeline_tag="other", license="mit")
    hub_repo = "your-org/spiral-gan"  # where `hub-models publish --org your-org` puts the weights
    # hub_revision: by default the tag "v<this distribution's version>", which publish creates

    def build(self, config):  # the network saved to model.safetensors
        return nn.Sequential(nn.Linear(2, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2))

    def sample_latents(self, n, generator, scale):  # CPU generator: same seed, same output everywhere
        return torch.randn(n, 2, generator=generator)

    def decode(self, latents, scale):
        return self.net(latents) * scale

    def load_data(self, root, split="train"):  # in-memory tensors; the engine batches them
        t = torch.rand(20_000, generator=torch.Generator().manual_seed(0)) * 12
        return {"points": torch.stack([t.cos() * t, t.sin() * t], 1) / 6}

    def setup_training(self, device):  # every trained net and its optimiser
        disc = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1)).to(device)

        def opt(net):
            return torch.optim.Adam(net.parameters(), lr=self.config.lr, betas=(0.5, 0.999))

        return TrainingSetup(
            nets={"generator": self.net, "discriminator": disc},
            optimizers={"generator": opt(self.net), "discriminator": opt(disc)},
        )

    def train_step(self, setup, batch):  # one D step and one G step; return losses
        bce = nn.functional.binary_cross_entropy_with_logits
        gen, disc = setup.nets["generator"], setup.nets["discriminator"]
        real = batch["points"]
        fake = gen(torch.randn(len(real), 2, device=real.device))
        setup.optimizers["discriminator"].zero_grad()
        d_real, d_fake = disc(real), disc(fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        setup.optimizers["discriminator"].step()
        setup.optimizers["generator"].zero_grad()
        d_fake = disc(fake)
        loss_g = bce(d_fake, torch.ones_like(d_fake))
        loss_g.backward()
        setup.optimizers["generator"].step()
        return {"loss_d": loss_d, "loss_g": loss_g}
