"""Bounds of the model and training parameters a user chooses, read by core's own checks and by
the flow parameter models (``flows.params``), so the command line, the page and core agree.

No torch here: the page and the CLI import these without loading a model library.
"""

from __future__ import annotations

LATENT_DIM = (2, 512)  # below 2 there is no map to draw; 512 is far past what a series needs
BASE_CHANNELS = (1, 256)  # 256 is also the default cap on the doubling (max_channels)
EPOCHS = (1, 1000)  # VAE epochs and GAN epochs per stage
BATCH_SIZE = (2, 4096)  # 2: the GAN's minibatch std and a VAE's GroupNorm need a pair
N_CRITIC = (1, 100)  # critic steps per generator step
LR_MAX = 1.0  # learning rates lie in (0, LR_MAX]


class BadParameter(ValueError):
    """A parameter core refuses, with its name and value as data, so a form can name the field
    and the value without parsing the message ("clip_percentiles=(50, 10) must be ...")."""

    def __init__(self, name: str, value: object, rule: str):
        super().__init__(f"{name}={value!r} {rule}")
        self.name, self.value, self.rule = name, value, rule

    def __reduce__(self):  # pickles (Prefect, multiprocessing) with its fields, not its message
        return type(self), (self.name, self.value, self.rule)


class OutOfRange(BadParameter):
    """A whole-number parameter outside its bounds ``lo`` … ``hi`` (None is allowed: the default)."""

    def __init__(self, name: str, value: object, lo: int, hi: int):
        super().__init__(name, value, f"must be None or an integer between {lo} and {hi}")
        self.lo, self.hi = lo, hi

    def __reduce__(self):
        return type(self), (self.name, self.value, self.lo, self.hi)

# Physical scale of a dataset, given at ingest (DESIGN §1: areas in physical units)
PIXEL_UNITS = ("pm", "Å", "nm", "µm", "mm")  # lengths a microscope or detector pixel is given in
PIXEL_SIZE_MAX = 1e6  # in the unit given: a pixel size above this is a typo, not an instrument
FRAME_INTERVAL_MAX = 1e6  # seconds (~11 days between frames)
