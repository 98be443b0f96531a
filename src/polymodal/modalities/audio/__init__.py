"""Audio columns: decoding, log-mel features and augmentation, CNN / RNN / TDNN encoders, pretrained backbones."""
from polymodal.modalities.audio import encoders, tdnn  # noqa: F401  (register the audio encoders)
from polymodal.modalities.audio.backbone import BackboneAudioPreprocessor
from polymodal.modalities.audio.decoder import (
    AudioCritic, AudioDecoder, check_audio, preview_audio, write_audio,
)
from polymodal.modalities.audio.decode import check_audio_upload
from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.modalities.base import Decoding, Modality, register_modality
from polymodal.modalities.audio.perturb import NOISE

AUDIO = register_modality(Modality(
    name="audio", roles=("audio",), preprocessor=AudioPreprocessor, default_encoder="cnn",
    extensions=(".wav", ".flac", ".ogg", ".mp3", ".m4a"),
    backbone_preprocessor=BackboneAudioPreprocessor, feature_cache="pooled",
    noise=NOISE, description="paths of audio files (or their bytes)",
    decoding=Decoding(decoder=AudioDecoder, critic=AudioCritic, write=write_audio, preview=preview_audio,
                      extension=".wav", check=check_audio),
    check_upload=check_audio_upload,
))
