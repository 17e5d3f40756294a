"""Turn one raw detector or microscope frame into model-ready float32 images in [0, 1].

Order of operations, per patch (patches are cut from the raw frame first):

1. mask: NaN/inf pixels always, pixels <= 0 when ``mask_nonpositive`` (Pilatus module gaps are
   -1, dead pixels -2: left in, they would become the darkest feature of every image);
2. ``log1p`` when ``log`` (scattering spans decades); values whose log is not finite are masked;
3. clip to percentiles of the valid pixels (one hot pixel must not squash the rest to black);
4. fill masked pixels with the minimum valid value, so gaps read as "no signal";
5. resize to ``size`` x ``size`` with Pillow: BOX (exact area averaging) when shrinking,
   BILINEAR when enlarging; the aspect ratio is not kept;
6. min-max normalise to [0, 1] (a constant image becomes zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from core.limits import BadParameter, OutOfRange

SIZE_RANGE = (8, 1024)
PATCH_RANGE = (8, 8192)
MIN_SIDE = 2  # a frame one pixel high or wide holds no image: resizing it gives a flat square
# Pixels one frame or patch may have: preprocessing works on float64 copies of it (~5 at the
# peak), so 2**26 pixels (an 8192 x 8192 frame) stays near 3 GB; larger frames are refused
# before any copy is made (cut them with patch_size: each patch is read on its own).
MAX_PIXELS = 2**26
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, the weights Pillow's convert("L") uses


def _option(default: object, description: str, bounds: tuple[int, int] | None = None) -> Any:
    """A preprocessing field with its description and bounds as data: the CLI's options are built
    from them (``flows.params.rule``), and :meth:`PreprocessParams.validate` checks the bounds
    (the key 'bounds' is not one pydantic reads, so core's refusal is the one a user sees)."""
    return field(default=default, metadata={"description": description} | ({"bounds": bounds} if bounds else {}))


@dataclass
class PreprocessParams:
    """How frames become training images; stored with every dataset so it can be redone."""

    size: int | None = _option(64, "Square side after resizing, in pixels; None keeps each frame's "
                               "(patch's) own size.", SIZE_RANGE)
    log: bool = _option(False, "log1p first: scattering intensities span several decades.")
    clip_percentiles: tuple[float, float] | None = _option(
        (0.5, 99.5), "Percentile clipping, 0 ≤ LO < HI ≤ 100: tames hot pixels and zingers.")
    mask_nonpositive: bool = _option(False, "Treat pixels ≤ 0 as detector gaps (Pilatus: -1, -2).")
    normalize: bool = _option(True, "Min-max to [0, 1] per image, what the models expect.")
    patch_size: int | None = _option(None, "Cut frames into square windows of this side (pixels) "
                                     "first: few large images.", PATCH_RANGE)
    patch_stride: int | None = _option(None, "Step between windows, in pixels; None = patch_size "
                                       "(no overlap).", (1, PATCH_RANGE[1]))
    grayscale: bool = _option(True, "Colour to luminance; off keeps channels as (C, H, W).")

    def __post_init__(self) -> None:
        if isinstance(self.clip_percentiles, list):  # JSON / Tiled metadata gives lists
            self.clip_percentiles = tuple(self.clip_percentiles)

    def validate(self) -> PreprocessParams:
        """Raise ValueError naming the first out-of-range field; return self when all is well."""
        for f in fields(self):
            if "bounds" in f.metadata:
                _check_int(f.name, getattr(self, f.name), *f.metadata["bounds"])
        if self.patch_stride is not None and self.patch_size is None:
            raise ValueError(
                f"patch_stride={self.patch_stride!r} needs patch_size; set patch_size too, "
                "or leave patch_stride=None"
            )
        for name in ("log", "mask_nonpositive", "normalize", "grayscale"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name}={value!r} must be True or False")
        clip = self.clip_percentiles
        if clip is not None:
            ok = (
                isinstance(clip, tuple)
                and len(clip) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in clip)
                and 0 <= clip[0] < clip[1] <= 100
            )
            if not ok:
                raise BadParameter("clip_percentiles", clip, "must be None or (lo, hi) with 0 <= lo < hi <= 100")
        return self


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise OutOfRange(name, value, lo, hi)


def patch_origins(
    shape: tuple[int, ...], patch_size: int | None, stride: int | None = None
) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the windows, row by row; edge remainders are dropped.

    Without a patch size the whole frame is one "patch" at (0, 0).
    """
    if patch_size is None:
        return [(0, 0)]
    height, width = shape[:2]
    if height < patch_size or width < patch_size:
        raise ValueError(
            f"frame of shape {tuple(shape[:2])} is smaller than patch_size={patch_size!r}; "
            "lower patch_size or leave it None"
        )
    stride = stride or patch_size
    return [
        (y, x)
        for y in range(0, height - patch_size + 1, stride)
        for x in range(0, width - patch_size + 1, stride)
    ]


def preprocess_frame(frame: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """Preprocess one frame into its patches.

    Parameters
    ----------
    frame : array (H, W) or (H, W, C) with C <= 4
    params : PreprocessParams

    Returns
    -------
    float32 array (n_patches, S, S), or (n_patches, C, S, S) for colour frames with
    ``grayscale=False``; n_patches is 1 without ``patch_size``. S is ``size`` (or the patch size).

    Raises
    ------
    ValueError
        Out-of-range params, a frame that is not an image, smaller than the patch, or a patch
        with no valid pixel ("frame is all NaN ...").

    Examples
    --------
    >>> ramp = np.arange(16.0).reshape(4, 4)
    >>> preprocess_frame(ramp, PreprocessParams(size=None, clip_percentiles=None))[0, 0]
    array([0.        , 0.06666667, 0.13333334, 0.2       ], dtype=float32)
    """
    params.validate()
    frame = _checked_frame(frame, params.patch_size)  # may be a memory map: not copied here
    size = params.patch_size
    patches = []
    for y, x in patch_origins(frame.shape, size, params.patch_stride):
        window = frame if size is None else frame[y : y + size, x : x + size]
        try:
            patches.append(_one_image(_channels_first(window, params.grayscale), params))
        except ValueError as exc:
            where = f" (patch at y={y}, x={x})" if size is not None else ""
            raise ValueError(f"{exc}{where}") from None
    out = np.stack(patches)  # (n, C, S, S)
    return out[:, 0] if out.shape[1] == 1 else out


def _checked_frame(frame: np.ndarray, patch_size: int | None) -> np.ndarray:
    """The frame as an array (no copy), refused when it is not an image or is too large to
    preprocess in memory: before, a 20,000 x 20,000 frame ended in a bare MemoryError."""
    frame = np.asarray(frame)
    if frame.dtype.kind not in "biuf":
        raise ValueError(f"frame has non-numeric dtype {frame.dtype}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] > 4):
        raise ValueError(f"frame of shape {frame.shape} must be (H, W) or (H, W, C) with C <= 4")
    height, width = frame.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"frame of shape {frame.shape} is {height} x {width} pixels: too small to be an image "
            f"(at least {MIN_SIDE} x {MIN_SIDE}); check the file"
        )
    window = height * width if patch_size is None else patch_size**2
    if window > MAX_PIXELS:
        raise ValueError(
            f"frame of {height} x {width} pixels is above the {MAX_PIXELS:,} pixels preprocessed "
            f"at once (about {MAX_PIXELS * 8 * 5 / 2**30:.1f} GB of working memory): set "
            "patch_size to cut it into patches (each processed on its own), or downsample it "
            "before ingest"
        )
    return frame


def _channels_first(frame: np.ndarray, grayscale: bool) -> np.ndarray:
    """(H, W[, C]) in any numeric dtype -> (C, H, W) float64: the working copy of one window."""
    if frame.ndim == 2:
        return frame[None].astype(np.float64)
    pixels = frame.astype(np.float64)
    if not grayscale:
        return np.moveaxis(pixels, -1, 0)
    if pixels.shape[2] >= 3:
        return (pixels[..., :3] @ _LUMA)[None]  # alpha, if any, is dropped
    return pixels[None, ..., 0]  # L or LA


def _one_image(x: np.ndarray, params: PreprocessParams) -> np.ndarray:
    """(C, h, w) float64 -> (C, S, S) float32, steps 1-6 of the module docstring."""
    x = x.copy()
    valid = np.isfinite(x).all(axis=0)
    if params.mask_nonpositive:
        with np.errstate(invalid="ignore"):
            valid &= (x > 0).all(axis=0)
    if params.log:
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.log1p(x)
        valid &= np.isfinite(x).all(axis=0)
    if not valid.any():
        if params.mask_nonpositive:
            raise ValueError(
                "frame is all NaN or inf or masked (pixels <= 0 with mask_nonpositive=True): "
                "no valid pixel to scale; check the file, or turn mask_nonpositive off"
            )
        raise ValueError("frame is all NaN or inf: no valid pixel to scale; check the file")
    if params.clip_percentiles is not None:
        lo, hi = np.percentile(x[:, valid], params.clip_percentiles)
        x = np.clip(x, lo, hi)
    x[:, ~valid] = x[:, valid].min()
    if params.size is not None:
        x = np.stack([_resize(channel, params.size) for channel in x])
    if params.normalize:
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x.astype(np.float32)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if image.shape == (size, size):
        return image
    shrinking = image.shape[0] >= size and image.shape[1] >= size
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    resized = Image.fromarray(image.astype(np.float32)).resize((size, size), resample)
    return np.asarray(resized, dtype=np.float64)
