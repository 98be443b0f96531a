"""Image columns: decoding, resizing and augmentation, CNN / ViT encoders, pretrained backbones."""
from polymodal.modalities.base import Decoding, Modality, register_modality
from polymodal.modalities.image.perturb import NOISE
from polymodal.modalities.image import encoders  # noqa: F401  (registers the image encoders)
from polymodal.modalities.image.backbone import BackboneImagePreprocessor
from polymodal.modalities.image.decoder import (
    ImageCritic, ImageDecoder, check_image, preview_image, write_image,
)
from polymodal.modalities.image.decode import check_image_upload
from polymodal.modalities.image.preprocess import ImagePreprocessor

IMAGE = register_modality(Modality(
    name="image", roles=("image",), preprocessor=ImagePreprocessor, default_encoder="cnn",
    extensions=(".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
    backbone_preprocessor=BackboneImagePreprocessor, feature_cache="pooled",
    noise=NOISE, description="paths of image files (or their bytes)",
    decoding=Decoding(decoder=ImageDecoder, critic=ImageCritic, write=write_image, preview=preview_image,
                      extension=".png", check=check_image),
    check_upload=check_image_upload,
))
