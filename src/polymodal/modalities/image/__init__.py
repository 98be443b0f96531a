"""Image columns: decoding, resizing and augmentation, CNN / ViT encoders, pretrained backbones."""
from polymodal.modalities.image import backbone, encoders, preprocess  # noqa: F401  (register)
