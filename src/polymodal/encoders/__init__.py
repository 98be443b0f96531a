"""Encoders: one per input column, each turning batch tensors into an ``EncoderOutput``.

Importing this package registers every built-in encoder; resolve one with
``get_encoder(modality, name)`` and build it as ``Cls(**encoder_inputs, **options)``.
"""
from polymodal.encoders import audio, image, tabular, text  # noqa: F401  (registers the encoders)
from polymodal.encoders import audio_tdnn  # noqa: F401  (registers audio 'tdnn')
from polymodal.encoders.base import EncoderOutput, encoder_names, get_encoder, register_encoder

__all__ = ["EncoderOutput", "register_encoder", "get_encoder", "encoder_names"]
