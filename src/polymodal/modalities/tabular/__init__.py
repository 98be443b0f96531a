"""Numeric and categorical columns, together one input: scaling, category maps, an MLP encoder."""
from polymodal.modalities.base import Modality, register_modality
from polymodal.modalities.tabular.perturb import NOISE
from polymodal.modalities.tabular import encoder  # noqa: F401  (registers the tabular encoder)
from polymodal.modalities.tabular.preprocess import TabularPreprocessor

TABULAR = register_modality(Modality(
    name="tabular", roles=("numeric", "categorical"), preprocessor=TabularPreprocessor,
    default_encoder="mlp", one_column=False,
    noise=NOISE, description="numbers and categories, all of a table's together as one input",
))
