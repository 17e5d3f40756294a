"""The quality panel's training-loss figure, read as a scientist reads it: what each curve is,
its unit, whole epochs on x, and the descent visible on linear axes fitted to each quantity."""

from __future__ import annotations

import pytest

from components.quality_panel import CRITIC, NATS, epoch_step, loss_figure


def vae_history(n: int, held_out: bool = True) -> list[dict]:
    """n epochs of a VAE history as core.models.train writes it: rec ~10x the KL, both falling."""
    return [{"epoch": e, "epochs": n, "rec": 400 + 300 / e, "kl": 20 + 10 / e, "loss": 420 + 310 / e,
             "val_loss": 430 + 300 / e if held_out else None, "seconds": 1.0} for e in range(1, n + 1)]


def test_vae_loss_has_one_panel_per_quantity_with_units():
    """Total loss (train and held-out), reconstruction and KL each on their own linear axis in
    nats per image, epochs on the shared x axis, legible size."""
    history = vae_history(20)
    fig = loss_figure(history)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 3 and "ELBO" in titles[0] and "reconstruction" in titles[1] and "KL" in titles[2]
    axes = [fig.layout.yaxis, fig.layout.yaxis2, fig.layout.yaxis3]
    assert [a.title.text for a in axes] == [NATS] * 3
    assert all(a.type in (None, "linear", "-") for a in axes)  # not log: the descent shows
    assert fig.layout.xaxis3.title.text == "epoch" and fig.layout.xaxis.dtick == 5  # 20 epochs: 0, 5, … 20
    assert fig.layout.height >= 400 and fig.layout.font.size >= 11
    by_axis = {(t.yaxis, t.name): list(t.y) for t in fig.data}
    assert by_axis[("y", "train")] == [h["loss"] for h in history]
    assert by_axis[("y", "held-out")] == [h["val_loss"] for h in history]
    assert by_axis[("y2", "train")] == [h["rec"] for h in history]
    assert by_axis[("y3", "train")] == [h["kl"] for h in history]
    assert [t.name for t in fig.data if t.showlegend] == ["train", "held-out"]  # each named once


def test_without_held_out_frames_only_train_curves():
    """val_fraction = 0: no held-out curve and no legend entry for it."""
    fig = loss_figure(vae_history(3, held_out=False))
    assert {t.name for t in fig.data} == {"train"} and fig.layout.xaxis.dtick == 1


def test_gan_history_shows_the_wasserstein_estimate_and_both_losses():
    """A GAN history (core.models.train_gan): Wasserstein estimate with its held-out one, critic and
    generator losses, in critic units."""
    history = [{"epoch": e, "critic_loss": -5.0 / e, "generator_loss": 2.0 / e, "gp": 0.1, "wdist": 5.0 / e,
                "val_wdist": 5.5 / e} for e in range(1, 5)]
    fig = loss_figure(history)
    assert "Wasserstein" in fig.layout.annotations[0].text
    assert [fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text] == [CRITIC, CRITIC]
    assert sorted((t.yaxis, t.name) for t in fig.data) == [
        ("y", "held-out"), ("y", "train"), ("y2", "critic"), ("y2", "generator")]


def test_no_history_is_an_empty_figure():
    """Nothing recorded: no traces (the panel hides the graph and says why)."""
    assert len(loss_figure([]).data) == 0 and len(loss_figure(None).data) == 0


@pytest.mark.parametrize(("n", "step"), [(1, 1), (6, 1), (7, 2), (12, 2), (13, 5), (30, 5), (31, 10),
                                         (61, 20), (301, 100), (1000, 200)])
def test_epoch_ticks_are_whole_and_few(n, step):
    """Whole-epoch steps of 1, 2, 5 × 10^k: at most 6 intervals, never a fractional epoch."""
    assert epoch_step(n) == step and n / step <= 6


def test_reconstruction_rows_for_clean_and_corrupted_inputs():
    """A denoising VAE's held-out figures: three rows per input kind, PSNR in dB, none when absent."""
    from components.quality_panel import reconstruction_rows

    model = {"reconstruction": {"clean": {"mse": 0.01, "psnr": 20.0, "ssim": 0.8},
                                "corrupted": {"mse": 0.02, "psnr": 16.99, "ssim": 0.7}}}
    rows = reconstruction_rows(model)
    assert [(r.label, r.value) for r in rows] == [
        ("MSE (clean input)", "0.01"), ("PSNR (clean input)", "20 dB"), ("SSIM (clean input)", "0.8"),
        ("MSE (corrupted input)", "0.02"), ("PSNR (corrupted input)", "17 dB"), ("SSIM (corrupted input)", "0.7")]
    assert reconstruction_rows({}) == []
