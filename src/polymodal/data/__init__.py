"""Data: table readers, schema inference, dataset and collate."""
from polymodal.data.dataset import Collator, LoadedInputs, MultimodalDataset, load_inputs
from polymodal.data.tables import Table, read_table
from polymodal.data.schema import Schema, infer_roles

__all__ = ["Collator", "LoadedInputs", "MultimodalDataset", "load_inputs", "Table", "read_table", "Schema",
           "infer_roles"]
