"""The ``generate:`` section (``problem_type: generation``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from polymodal.config.strict import _Strict

__all__ = ["GenerateConfig"]


class GenerateConfig(_Strict):
    """Generation (``problem_type: generation``, see ``polymodal.generation``).

    ``vae`` and ``gan`` make the ``target`` column from the row's other columns (the
    ``conditions``); ``mvae`` learns one latent space over ``columns`` so that any present
    subset of them makes any missing one.
    """

    model: Literal["vae", "gan", "mvae"] = "vae"
    target: str | None = Field(None, description="vae / gan: the generated column")
    columns: list[str] = Field(default_factory=list, description="mvae: the jointly modelled columns (two or more)")
    conditions: list[str] | None = Field(None, description="the conditioning columns; None = every other "
                                         "non-ignored column (the label too)")
    latent_dim: int = Field(32, ge=1, le=4096)
    width: int = Field(64, ge=4, le=1024, description="channel width of the decoders and critics")
    beta: float = Field(1.0, ge=0.0, description="weight of the KL term (VAEs)")
    kl_warmup_epochs: float = Field(2.0, ge=0.0, description="epochs over which β rises linearly from 0")
    posterior: Literal["mopoe", "poe"] = Field("mopoe", description="mvae: mixture of products of "
                                               "experts (Sutter 2021) or product of experts (Wu 2018)")
    likelihood_scaling: Literal["largest", "none"] = Field(
        "largest", description="mvae: in training, scale each column's reconstruction term by the "
        "values of the largest column over its own (Shi et al. 2019), so a small image is not drowned "
        "by a long spectrogram; validation and evaluation report the unscaled ELBO")
    label_weight: float = Field(
        0.0, ge=0.0, description="mvae: weight of a label likelihood p(label | z) on every subset's "
        "latent (the label as one more jointly modelled column, as in Wu & Goodman 2018's image + label "
        "MVAE), so that what the columns share is organised by class; 1.0 weighs it as much as the "
        "largest column. gan: weight of a label classifier on the generator's and the critic's "
        "condition vectors (the label not being a condition: an image that conditions a clip), "
        "against the adversarial loss, so that both encode the class the conditions show. Needs "
        "label:. 0 = unsupervised")
    discriminator: Literal["projection", "auxiliary"] = "projection"
    gan_loss: Literal["hinge", "nonsaturating"] = "hinge"
    ema: float = Field(0.999, ge=0.0, lt=1.0, description="EMA decay of the generator's weights (gan)")
    critic_steps: int = Field(1, ge=1, description="discriminator updates per generator update (gan)")
    mode_seeking: float = Field(
        0.0, ge=0.0, description="gan: weight of the mode-seeking term (Mao et al. 2019): each generator "
        "step also makes a second sample of every row from other noise and is penalised by the inverse of "
        "how far apart the two samples are per unit of noise distance, against samples of a class that all "
        "look alike. 0 = off")

    @model_validator(mode="after")
    def _shape(self) -> "GenerateConfig":
        if self.model == "mvae":
            if len(self.columns) < 2 or len(set(self.columns)) != len(self.columns):
                raise ValueError(f"generate.model: mvae needs two or more distinct columns in generate.columns, "
                                 f"got {self.columns}; e.g. columns: [image, audio]")
        elif not self.target:
            raise ValueError(f"generate.model: {self.model} needs generate.target, the column to generate")
        elif self.columns:
            raise ValueError("generate.columns is for model: mvae; vae and gan generate one target")
        if self.label_weight and self.model == "vae":
            raise ValueError("generate.label_weight is for model: mvae or gan (a vae reads the label as a condition)")
        if self.mode_seeking and self.model != "gan":
            raise ValueError(f"generate.mode_seeking is for model: gan, not {self.model}")
        return self
