"""What is done with a fitted generation model's samples: scoring them with a reference
classifier (``evaluate``) and the ``polymodal generate`` command (``commands``). Sampling
itself is ``polymodal.generation.sample``."""
