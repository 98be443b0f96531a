"""Task heads: read the fused vector out into predictions and a loss."""
from polymodal.heads.alignment import AlignedBatch, AlignmentHead
from polymodal.heads.classification import ClassificationHead
from polymodal.heads.late import LateHead
from polymodal.heads.regression import RegressionHead

__all__ = ["ClassificationHead", "RegressionHead", "LateHead", "AlignmentHead", "AlignedBatch"]
