"""Numeric and categorical columns, together one input: scaling, category maps, an MLP encoder."""
from polymodal.modalities.tabular import encoder, preprocess  # noqa: F401  (register)
