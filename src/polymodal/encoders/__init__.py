"""Encoders: one per input column, each turning batch tensors into an ``EncoderOutput``.

The built-in encoders live with their modality (``polymodal.modalities``); resolve one with
``get_encoder(modality, name)`` and build it as ``Cls(**encoder_inputs, **options)``.
"""
from polymodal.encoders.base import EncoderOutput, encoder_names, get_encoder, register_encoder

__all__ = ["EncoderOutput", "register_encoder", "get_encoder", "encoder_names"]
