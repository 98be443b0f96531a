"""Task heads: read the fused vector out into predictions and a loss; registered on import."""
from polymodal.heads.alignment import AlignedBatch, AlignmentHead
from polymodal.heads.base import get_head, head_names, register_head
from polymodal.heads.classification import ClassificationHead
from polymodal.heads.late import LateHead
from polymodal.heads.multilabel import MultiLabelHead
from polymodal.heads.multioutput import MultiOutputHead
from polymodal.heads.regression import RegressionHead

__all__ = ["ClassificationHead", "MultiLabelHead", "MultiOutputHead", "RegressionHead", "LateHead", "AlignmentHead", "AlignedBatch",
           "register_head", "get_head", "head_names"]
