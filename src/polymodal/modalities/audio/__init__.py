"""Audio columns: decoding, log-mel features and augmentation, CNN / RNN / TDNN encoders, pretrained backbones."""
from polymodal.modalities.audio import backbone, encoders, preprocess, tdnn  # noqa: F401  (register)
