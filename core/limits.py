"""Bounds of the model, training and sampling parameters a user chooses, read by core's own checks
and by the flow parameter models (``flows.params``), so the command line, the page and core agree.

No torch here: the page and the CLI import these without loading a model library.
"""

from __future__ import annotations

LATENT_DIM = (2, 512)  # below 2 there is no map to draw; 512 is far past what a series needs
BASE_CHANNELS = (1, 256)  # 256 is also the default cap on the doubling (max_channels)
FC_HIDDEN = (0, 4096)  # VAE's fully connected layer before the latent heads; 0 = none, 1024 = Moola et al.'s
EPOCHS = (1, 1000)  # VAE epochs and GAN epochs per stage
BATCH_SIZE = (2, 4096)  # 2: the GAN's minibatch std and a VAE's GroupNorm need a pair
N_CRITIC = (1, 100)  # critic steps per generator step
LR_MAX = 1.0  # learning rates lie in (0, LR_MAX]
XPCS_SIDE = (8, 256)  # two-time maps resized to side × side for the regressor; 256 px is 65k inputs
N_MEMBERS = (1, 32)  # ensemble members (seeds) of the XPCS regressor: the spread is its uncertainty
XPCS_FRAMES = (8, 512)  # frames of a simulated two-time map: below 8 no decay shape; 512² float32 is 1 MiB a map
XPCS_MAPS = (1, 100_000)  # maps per simulation run (the study trains on 2,000; 100,000 64² maps are 1.6 GB)

# material variations (core.variations): samples per reference and the plausibility thresholds
N_PER_REFERENCE = (1, 100_000)  # M × N decodes: 100 000 per reference is hours on a CPU already
ENTROPY_MAX = (0.0, 8.0)  # bits: an image entropy over 256 bins lies in [0, 8]
IOU_MIN = (0.0, 1.0)
INTENSITY_MAX = (0.0, 10.0)  # |ΔΣI| / ΣI_ref: 10 (ten times the reference's mass) is far past plausible
AREA_MAX = (0.0, 1.0)  # change of the foreground's fraction of the image


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
