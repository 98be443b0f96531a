"""Data: table readers, schema inference, per-modality preprocessors, dataset and collate."""
from polymodal.data import audio, image, tabular, text  # noqa: F401  (register preprocessors)
from polymodal.data.base import PREPROCESSORS, BadInput, Preprocessor, get_preprocessor
from polymodal.data.dataset import Collator, LoadedInputs, MultimodalDataset, load_inputs
from polymodal.data.readers import Table, read_table
from polymodal.data.schema import Schema, infer_schema

__all__ = [
    "PREPROCESSORS", "BadInput", "Preprocessor", "get_preprocessor",
    "Collator", "LoadedInputs", "MultimodalDataset", "load_inputs",
    "Table", "read_table", "Schema", "infer_schema",
]
