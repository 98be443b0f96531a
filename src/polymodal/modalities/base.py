"""The ``Modality`` descriptor and the registry of modalities (a leaf: it imports no modality).

A modality is a folder under ``polymodal/modalities/`` whose ``__init__`` registers one
``Modality``: the schema roles it reads, its preprocessors (plain and pretrained-backbone),
its default encoder, whether its cells are files (and of which extensions), what the feature
cache keeps for a frozen backbone, and how the robustness report perturbs it. Every stage that
would otherwise test a modality's name asks its descriptor instead::

    modality = get_modality(pre.modality)
    if modality.cells_are_files: ...

Register a new one with ``register_modality(Modality(name=..., ...))``; its encoders register
with ``polymodal.encoders.register_encoder(name, encoder_name)``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from polymodal.errors import ConfigError

__all__ = ["Modality", "Noise", "Decoding", "register_modality", "get_modality", "modality_names", "modalities",
           "modality_of_role", "input_roles", "file_modality_of", "unregister_modality", "noise_generator"]


@dataclass(frozen=True)
class Noise:
    """How the robustness report perturbs one modality's decoded inputs.

    Attributes:
        meaning: what a level means, for the report (``"white noise, SNR in dB"``).
        levels: default levels, mild to severe.
        perturb: ``perturb(pre, items, level, seed, reload) -> items``: the loaded items of one
            input (``None`` = absent) perturbed at ``level``, seeded per row and level.
            ``reload(pre)`` decodes the table again through a (noisy) copy of the
            preprocessor, for modalities whose noise belongs before the deterministic
            front end (audio: noise on the waveform, then log-mel).
        applies: ``applies(pre) -> reason | None``: why this input cannot be perturbed
            (None when it can), e.g. a backbone whose features are cached.
    """

    meaning: str
    levels: tuple[float, ...]
    perturb: Callable[..., list]
    applies: Callable[[Any], str | None] = lambda pre: None


def noise_generator(*keys: Any) -> torch.Generator:
    """A generator seeded by ``keys`` (e.g. the report's seed, a row, a level): noise repeats exactly."""
    return torch.Generator().manual_seed(zlib.crc32(repr(keys).encode()))


@dataclass(frozen=True)
class Decoding:
    """How a generation model (``problem_type: generation``) makes a column of this modality.

    Attributes:
        decoder: ``decoder(in_dim, **pre.encoder_inputs())``, an ``nn.Module`` whose
            ``forward(z [B, in_dim])`` returns a batch in the space of the preprocessor's
            ``collate`` (images: normalised ``[B, C, H, W]``; audio: log-mel ``[B, T, F]``), with
            ``target(collated) -> Tensor`` (what it must produce for a collated batch) and
            ``reconstruction(output, target) -> [B]`` (a per-row loss).
        critic: ``critic(**pre.encoder_inputs())``, a spectrally normalised ``nn.Module``
            mapping decoder-space ``[B, ...]`` to features ``[B, out_dim]`` (a GAN's discriminator).
        write: ``write(pre, row, stem) -> Path``: one decoded row written as a file
            (``stem`` + ``extension``: a PNG, a 16-bit WAV).
        preview: ``preview(pre, row) -> uint8 [H, W] | [H, W, 3]``: a picture of one decoded row
            (the image itself, a spectrogram) for sample grids.
        extension: the suffix ``write`` adds (``".png"``).
        check: ``check(pre) -> reason | None``: why this input cannot be generated (a setting
            that discards what the decoder must make), or None.
    """

    decoder: type
    critic: type
    write: Callable[..., Any]
    preview: Callable[..., Any]
    extension: str
    check: Callable[[Any], str | None] = lambda pre: None


@dataclass(frozen=True)
class Modality:
    """What the pipeline needs to know of one modality.

    Attributes:
        name: the modality's name (``text``); also its config section (``text:``).
        roles: schema roles whose columns it reads (``("text",)``; tabular reads
            ``("numeric", "categorical")``).
        preprocessor: the preprocessor class (see ``polymodal.preprocessing.Preprocessor``).
        default_encoder: the encoder used when ``encoder.name`` is not set.
        one_column: one model input per column (text, image, audio); False: every column of
            its roles together is one input named after the modality (tabular).
        extensions: file extensions (lower case) of cells that are files.
        backbone_preprocessor: the preprocessor of columns with a pretrained ``backbone:``,
            or None when the modality has no backbones.
        feature_cache: what a frozen backbone's feature cache keeps by default
            (``tokens`` for short sequences, ``pooled`` for hundreds of positions).
        noise: how the robustness report perturbs it (None: it is only removed).
        free_text: cells are free text, so words such as class names can be encoded as its
            inputs (zero-shot classification writes "a photo of a {}" through such a column).
        decoding: how generation models make its columns (None: it cannot be generated).
        check_upload: ``check_upload(blob, limits)`` checks a file's bytes by their content
            against ``limits`` (``pixels``, ``audio_seconds``), raising ``OverLimit`` or
            ``BadInput``; None for a modality whose cells are not files.
    """

    name: str
    roles: tuple[str, ...]
    preprocessor: type
    default_encoder: str
    one_column: bool = True
    extensions: tuple[str, ...] = ()
    backbone_preprocessor: type | None = None
    feature_cache: str = "pooled"
    noise: Noise | None = None
    free_text: bool = False
    decoding: Decoding | None = None
    check_upload: Callable[[bytes, Any], None] | None = None
    description: str = field(default="", compare=False)

    @property
    def cells_are_files(self) -> bool:
        """Cells hold file paths (or a file's bytes)."""
        return bool(self.extensions)


_MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    """Add a modality; its roles must not be another's.

    Raises:
        RuntimeError: the name or one of its roles is registered already.
    """
    if modality.name in _MODALITIES:
        raise RuntimeError(f"modality {modality.name!r} registered twice")
    taken = {r: m.name for m in _MODALITIES.values() for r in m.roles}
    clash = [r for r in modality.roles if r in taken]
    if clash:
        raise RuntimeError(f"modality {modality.name!r}: role(s) {clash} already belong to {taken[clash[0]]!r}")
    _MODALITIES[modality.name] = modality
    return modality


def unregister_modality(name: str) -> None:
    """Remove a modality (tests that register one of their own)."""
    _MODALITIES.pop(name, None)


def modality_names() -> list[str]:
    """Registered modality names, sorted."""
    return sorted(_MODALITIES)


def modalities() -> list[Modality]:
    """Registered modalities, sorted by name."""
    return [_MODALITIES[n] for n in modality_names()]


def get_modality(name: str) -> Modality:
    """The registered modality ``name``.

    Raises:
        ConfigError: no such modality.
    """
    if name not in _MODALITIES:
        raise ConfigError(f"unknown modality {name!r}; known: {', '.join(modality_names()) or 'none'}")
    return _MODALITIES[name]


def modality_of_role(role: str) -> Modality | None:
    """The modality that reads columns of ``role``; None for ``ignore`` or an unknown role."""
    for modality in _MODALITIES.values():
        if role in modality.roles:
            return modality
    return None


def input_roles() -> tuple[str, ...]:
    """Every role a column can have: the registered modalities' roles, then ``ignore``."""
    return (*[r for m in _MODALITIES.values() for r in m.roles], "ignore")  # registration order


def media_extensions() -> dict[str, tuple[str, ...]]:
    """Role → file extensions, for every modality whose cells are files (registration order)."""
    return {m.roles[0]: m.extensions for m in _MODALITIES.values() if m.cells_are_files}


def file_modality_of(path: str, choices: Sequence[Modality] | None = None) -> Modality | None:
    """The file modality whose extensions ``path`` ends with, or None."""
    lower = path.lower()
    for modality in choices if choices is not None else modalities():
        if modality.extensions and lower.endswith(modality.extensions):
            return modality
    return None

