"""The names of the terms of DAPT's loss, as the training history, the progress record, the run's metrics
and the app's charts key them (e.g. `history[-1][CE]`).

The loss of a step is CE + beta_v * INTRA + beta_t * INTER (engine.losses computes the two dispersion
terms); LOSS names that total. The names are written into prompt files and metrics JSON, so they are a
file format: change them only with a reader for the old ones. Free of torch, so that what only reads a
history (the run's health, the app's job queue and charts) need not load the engine.
"""

from __future__ import annotations

LOSS = "loss"  # the total: CE + beta_v * INTRA + beta_t * INTER
CE = "ce"  # cross-entropy of the (pooled) logits
INTRA = "intra"  # intra-dispersion: image features pulled toward their class prototype (losses.intra_dispersion)
INTER = "inter"  # inter-dispersion: class text embeddings pushed apart (losses.inter_dispersion)
LOSS_TERMS = (LOSS, CE, INTRA, INTER)
