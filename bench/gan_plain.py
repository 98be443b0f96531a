"""A plain-torch conditional GAN on Fashion-MNIST, for scale next to polymodal's (bench/generation.py).

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/gan_plain.py '{"width": 32, "seconds": 480}'

polymodal's own image decoder and critic (``ImageDecoder``, ``ImageCritic``), the class as a
32-wide embedding concatenated to z (64), a projection critic (plus an AC-GAN term with
``"aux": w``; ``"proj": 0`` drops the projection), hinge loss, Adam (0, 0.9), an EMA of the
generator (0.999), batches of 64, fp32, trained for ``seconds`` of wall time. Every minute it
prints the conditional accuracy of 2,000 samples (EMA and raw generator) under a plain-torch CNN
trained 2 epochs on the real images (cached in /tmp/ref.pt); at the end the conditional accuracy
on the 10,000 test labels and CAS (the same CNN trained 2 epochs on 20,000 samples, scored on the
real test images). Settings are a JSON object: width, z, batch, seconds, aux, proj, lr_g, lr_d,
dsteps, threads.
"""
import sys, time, math, json
