"""Text columns: tokenizer preprocessing, RNN / transformer / Hugging Face encoders, pretrained backbones."""
from polymodal.modalities.base import Modality, register_modality
from polymodal.modalities.text.perturb import NOISE
from polymodal.modalities.text import encoders  # noqa: F401  (registers the text encoders)
from polymodal.modalities.text.backbone import BackboneTextPreprocessor
from polymodal.modalities.text.preprocess import TextPreprocessor

TEXT = register_modality(Modality(
    name="text", roles=("text",), preprocessor=TextPreprocessor, default_encoder="lstm",
    backbone_preprocessor=BackboneTextPreprocessor, feature_cache="tokens", free_text=True,
    noise=NOISE, description="free text: a trained WordPiece/BPE tokenizer, or a pretrained backbone's",
))
