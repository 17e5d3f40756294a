"""Where tensors live: one function, so no module hard-codes a device."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:<index>")


def pick_device(preference: str = "auto") -> torch.device:
    """Resolve a device preference to a ``torch.device``.

    ``"auto"`` takes the GPU when there is one and the CPU otherwise; asking for ``"cuda"``
    on a machine without one is an error rather than a silent, much slower CPU run.
    """
    pref = str(preference).strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={preference!r} but torch sees no CUDA GPU (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}). Use device='auto' or 'cpu', "
                "or run on a GPU worker with a CUDA build of torch."
            )
        try:
            device = torch.device(pref)
        except RuntimeError:
            raise ValueError(f"device={preference!r} must be one of {DEVICE_CHOICES}") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={preference!r} but only {torch.cuda.device_count()} CUDA GPU(s) are "
                f"visible: use an index between 0 and {torch.cuda.device_count() - 1}"
            )
        return device
    raise ValueError(f"device={preference!r} must be one of {DEVICE_CHOICES}")
