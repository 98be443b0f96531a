"""Modalities: one folder each (text, image, audio, tabular), registered on import."""
from polymodal.modalities import audio, image, tabular, text  # noqa: F401  (register)
