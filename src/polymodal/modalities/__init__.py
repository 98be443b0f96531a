"""Modalities: one folder each, registered on import; see ``modalities.base`` for the descriptor."""
# Registration order is the order roles are listed in messages: text, image, audio, numeric, categorical.
from polymodal.modalities import text, image, audio, tabular  # noqa: F401,I001  (register)
from polymodal.modalities.base import (Modality, Noise, file_modality_of, get_modality, input_roles, modalities,
                                       media_extensions, modality_names, modality_of_role,
                                       register_modality)

__all__ = ["Modality", "Noise", "register_modality", "get_modality", "modality_names", "modalities",
           "modality_of_role", "input_roles", "file_modality_of", "media_extensions"]
