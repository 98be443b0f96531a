"""Generation: models that make a column (an image, a sound) from the others.

``problem_type: generation`` (``tasks/generation.py``) builds one of three models over the
same encoders and fusions as every other task:

- ``vae`` (``vae.py``): a conditional VAE, q(z | x, c) and p(x | z, c), with KL warm-up and β;
- ``gan`` (``gan.py``): a conditional GAN, projection or auxiliary-classifier discriminator,
  spectral norm, hinge or non-saturating loss, an EMA of the generator;
- ``mvae`` (``mvae.py``): one latent space over two or more columns, a product-of-experts or
  mixture-of-products-of-experts posterior, so any present subset generates any missing one.

``c`` is the fused encoding of the conditioning columns (``parts.Conditions``). Each
modality's decoder, critic and file writer come from its ``Decoding`` descriptor.
``sample.py`` turns conditions into samples and files; ``polymodal.samples`` scores them with
a reference classifier and holds the ``generate`` command.
"""
from polymodal.generation.build import build_generative_model
from polymodal.generation.model import GenerativeModel

__all__ = ["GenerativeModel", "build_generative_model"]
