"""A progressively grown WGAN-GP (Karras et al. 2018, "Progressive Growing of GANs").

The generator maps z ~ N(0, I) to an image; the critic scores images (higher = more real).
Both are built for every resolution from 4×4 up to the grid (``image_size`` or the power of two
above it, see ``core.models``) at once, and two float
buffers say how much of them is in use: ``level`` (resolution = 4 · 2**level) and ``alpha``
(the fade-in weight of the newest block). Building everything up front keeps the state dict
the same shape at every stage, so a checkpoint of a half-grown model loads into a fresh
``GAN(config)`` and resumes at the stage it was saved at. Growing works on the grid; a fully
grown model's :meth:`GAN.generate` resizes its images to ``image_size`` (28 px from 32, 101 px
from 128), and training shows the critic real frames resized onto the grid.

The checkpoint stores one ``GAN`` module (generator + critic + growth buffers): one model id,
one flat float32 array, and training can resume from it. Only the generator is needed to
sample (:meth:`GAN.generate`).

Ingredients, each small and next to where it is used:

- equalised learning rate: weights are stored as N(0, 1) and scaled by He's constant at run
  time, so Adam's per-parameter step sizes are the same for every layer;
- pixel normalisation of z and of every generator feature vector (no BatchNorm: the
  checkpoint only stores float state, and outputs never depend on the rest of the batch);
- minibatch standard deviation in the critic, so it can see a collapsed, too-uniform batch;
- a gradient penalty (weight 10) instead of weight clipping: :func:`gradient_penalty`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models import check_shape_fields, grid_size, resize


@dataclass
class GANConfig:
    image_size: int = 64  # final square side; grown from 4×4 by doubling up to its grid
    channels: int = 1  # 1 for detector/microscope frames, 3 for RGB, 4 for RGBA
    latent_dim: int = 64  # the z the variations perturb; 64 is enough for a colloid series
    base_channels: int = 32  # width at the final resolution; doubles per halving towards 4×4
    max_channels: int = 256  # cap on that doubling so a 512 px model stays at a few M parameters
    mbstd_group: int = 4  # minibatch-std group size (ProGAN's); batches not divisible use gcd

    def validate(self) -> GANConfig:
        """Raise ValueError naming the bad field, its value and the allowed range."""
        check_shape_fields(self)
        if not (isinstance(self.mbstd_group, int) and 1 <= self.mbstd_group <= 64):
            raise ValueError(f"mbstd_group={self.mbstd_group!r} must be between 1 and 64")
        return self

    @property
    def grid(self) -> int:
        """Final resolution of the growth: the power of two at or above image_size."""
        return grid_size(self.image_size)

    @property
    def max_level(self) -> int:
        """Index of the final resolution: 4 · 2**max_level == grid."""
        return int(math.log2(self.grid)) - 2

    @property
    def widths(self) -> list[int]:
        """Feature channels at each level, 4×4 first."""
        top = self.max_level
        return [min(self.base_channels * 2 ** (top - lv), self.max_channels)
                for lv in range(top + 1)]


class EqualizedConv2d(nn.Module):
    """Conv2d whose weight is N(0, 1) and scaled by gain / sqrt(fan_in) at every call."""

    def __init__(self, cin: int, cout: int, kernel_size: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """Linear layer with the same run-time He scaling as :class:`EqualizedConv2d`."""

    def __init__(self, cin: int, cout: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each feature vector (over dim 1) to unit root-mean-square."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the mean std of the features over each group of samples.

    (B, C, H, W) -> (B, C + 1, H, W). A generator that collapses to one image gives std ~0,
    which real batches never have, so the critic can tell.
    """
    b, c, h, w = x.shape
    g = math.gcd(b, group)
    y = x.reshape(g, b // g, c, h, w)  # sample k of each group sits at y[:, k]
    std = y.var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (B // g,)
    std = std.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)  # back to each sample
    return torch.cat([x, std], dim=1)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class GenBlock(nn.Module):
    """Double the resolution: nearest upsampling, two 3×3 convs, each pixel-normalised."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cout, 3)
        self.conv2 = EqualizedConv2d(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = pixel_norm(_act(self.conv1(x)))
        return pixel_norm(_act(self.conv2(x)))


class Generator(nn.Module):
    """z (B, d) -> image (B, C, r, r) in [0, 1], with r = 4 · 2**level."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        w = config.widths
        self.input = EqualizedLinear(config.latent_dim, w[0] * 16, gain=math.sqrt(2) / 4)
        self.input_conv = EqualizedConv2d(w[0], w[0], 3)
        self.blocks = nn.ModuleList(GenBlock(w[lv - 1], w[lv]) for lv in range(1, len(w)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, config.channels, 1, gain=1.0) for c in w)

    def forward(self, z: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        # z is pixel-normalised (as in ProGAN), so its length is ignored and a perturbation of
        # z only turns it (DESIGN §1).
        h = self.input(pixel_norm(z)).view(len(z), -1, 4, 4)  # (B, w0, 4, 4)
        h = pixel_norm(_act(self.input_conv(pixel_norm(_act(h)))))
        for block in self.blocks[: max(level - 1, 0)]:
            h = block(h)
        out = self.to_rgb[level](self.blocks[level - 1](h) if level else h)  # (B, C, r, r)
        if level and alpha < 1:
            # Fade-in: blend with the previous level's image, upsampled, so a new block
            # starts as a no-op and grows in smoothly.
            low = F.interpolate(self.to_rgb[level - 1](h), scale_factor=2, mode="nearest")
            out = torch.lerp(low, out, alpha)
        # Sigmoid rather than a clamp: a clamp passes no gradient for pixels outside [0, 1],
        # so a generator that overshoots the dark background of a sparse frame could not learn
        # its way back. It is also what VAE.decode does, so both families decode alike.
        return torch.sigmoid(out)


class CriticBlock(nn.Module):
    """Halve the resolution: two 3×3 convs then 2×2 average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cin, 3)
        self.conv2 = EqualizedConv2d(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(_act(self.conv2(_act(self.conv1(x)))), 2)


class Critic(nn.Module):
    """image (B, C, r, r) -> score (B,), the mirror of :class:`Generator`."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        w = config.widths
        self.from_rgb = nn.ModuleList(EqualizedConv2d(config.channels, c, 1) for c in w)
        self.blocks = nn.ModuleList(CriticBlock(w[lv], w[lv - 1]) for lv in range(1, len(w)))
        self.final_conv = EqualizedConv2d(w[0] + 1, w[0], 3)  # +1: the minibatch-std channel
        self.final_linear = EqualizedLinear(w[0] * 16, w[0])
        self.score = EqualizedLinear(w[0], 1, gain=1.0)

    def forward(self, x: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        h = _act(self.from_rgb[level](x))  # (B, w[level], r, r)
        if level:
            h = self.blocks[level - 1](h)  # (B, w[level - 1], r/2, r/2)
            if alpha < 1:
                low = _act(self.from_rgb[level - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(low, h, alpha)
            for block in reversed(self.blocks[: level - 1]):
                h = block(h)
        h = _act(self.final_conv(minibatch_std(h, self.config.mbstd_group)))  # (B, w0, 4, 4)
        return self.score(_act(self.final_linear(h.flatten(1)))).squeeze(1)


class GAN(nn.Module):
    """Generator, critic and the growth state, stored and loaded as one model."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config.validate()
        self.generator = Generator(config)
        self.critic = Critic(config)
        # Float buffers, not Python ints: the checkpoint stores float state only, and this way
        # load_state_dict restores the stage a model was saved at.
        self.register_buffer("level", torch.tensor(0.0))
        self.register_buffer("alpha", torch.tensor(1.0))

    @property
    def current_level(self) -> int:
        return int(self.level.item())

    @property
    def resolution(self) -> int:
        """Side of the images the model makes and scores at its current growth stage."""
        return 4 * 2**self.current_level

    @property
    def output_size(self) -> int:
        """Side of what :meth:`generate` returns: image_size once at the last growth level."""
        return self.config.image_size if self.current_level == self.config.max_level else self.resolution

    @property
    def fully_grown(self) -> bool:
        return self.current_level == self.config.max_level and float(self.alpha) == 1.0

    def grow(self) -> GAN:
        """Move to the next resolution with alpha = 0 (the new block faded out)."""
        if self.current_level >= self.config.max_level:
            raise ValueError(
                f"already at the final resolution {self.config.grid}; grow() is only "
                f"valid below it"
            )
        self.level.fill_(self.current_level + 1)
        self.alpha.fill_(0.0)
        return self

    def set_alpha(self, alpha: float) -> None:
        """Fade-in weight of the newest block, 0 (not yet used) to 1 (fully in)."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha={alpha!r} must be between 0 and 1")
        self.alpha.fill_(alpha)

    def generate_stage(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, C, r, r) in [0, 1] at the current resolution r: what the critic scores."""
        return self.generator(z, self.current_level, float(self.alpha))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, C, s, s) in [0, 1] with s = :attr:`output_size`: the model's images."""
        return resize(self.generate_stage(z), self.output_size)

    def criticize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, r, r) -> (B,) critic scores at the current resolution."""
        return self.critic(x, self.current_level, float(self.alpha))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP: ``weight · mean((‖∇D(x̂)‖₂ − 1)²)`` at random points x̂ between real and fake.

    Keeps the critic close to 1-Lipschitz, which is what makes its score gap a Wasserstein
    distance estimate. ``fake`` should be detached; the result is differentiable in the critic.
    """
    t = torch.rand(len(real), 1, 1, 1, device=real.device, generator=generator)
    x = torch.lerp(fake, real, t).requires_grad_(True)  # (B, C, r, r)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return weight * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
