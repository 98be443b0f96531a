"""Text columns: tokenizer preprocessing, RNN / transformer / Hugging Face encoders, pretrained backbones."""
from polymodal.modalities.text import backbone, encoders, preprocess  # noqa: F401  (register)
