"""Zero-shot classification with an alignment model: score class names against inputs.

Each class name is put into a prompt (``"{}"`` by default, e.g. ``"a photo of a {}"``),
embedded by the model's text column, and compared with the inputs' embeddings; the
probabilities are a softmax of the learned logit scale times the cosine similarities, as in
CLIP. No classifier head is trained.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from polymodal.errors import ConfigError, DataError
from polymodal.fitted import as_fitted
from polymodal.modalities import get_modality
from polymodal.retrieval.embed import embed_column, embedding_space

__all__ = ["zero_shot"]


def zero_shot(fitted: Any, data: Any, column: str, classes: Sequence[str],
              template: str = "{}", text_column: str | None = None) -> pd.DataFrame:
    """Class probabilities of each row's ``column`` (an image or audio column, usually).

    Args:
        fitted: a ``FittedModel`` (or fitted ``Predictor``) whose aligner projects ``column``
            and a text column.
        classes: class names; each becomes ``template.format(name)``.
        text_column: the aligned text column that embeds the prompts (needed only when the
            aligner has several).

    Returns:
        One row per table row (NaN where the input is absent): ``predicted`` and one
        probability column per class.

    Raises:
        ConfigError: the model has no aligner over ``column`` and a text column.
        DataError: fewer than two classes, repeated names, a template without ``{}``.
    """
    fitted = as_fitted(fitted)
    model = fitted.model
    if embedding_space(model, column) != "aligned":
        aligned = list(getattr(getattr(model, "aligner", None), "names", []) or [])
        raise ConfigError(f"zero-shot classification needs a model that aligns column {column!r} with a text "
                          f"column; this model aligns {', '.join(map(repr, aligned)) if aligned else 'no columns'} "
                          "(train one with problem_type: alignment, or an align: section)")
    texts = [n for n in model.aligner.names
             if get_modality(fitted.preprocessors[n].modality).free_text and n != column]
    if text_column is not None:
        if text_column not in texts:
            raise ConfigError(f"text_column {text_column!r} is not an aligned text column; choose from {texts}")
        texts = [text_column]
    if len(texts) != 1:
        raise ConfigError(f"zero-shot classification needs one aligned text column to embed the class names; "
                          f"this model has {texts or 'none'}" + ("; pass text_column=" if texts else ""))
    names = [str(c) for c in classes]
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataError(f"zero-shot classification needs at least two distinct class names, got {names}")
    if "{}" not in template:
        raise DataError(f"template {template!r} has no {{}} where the class name goes, e.g. 'a photo of a {{}}'")
    prompts = pd.DataFrame({texts[0]: [template.format(n) for n in names]})
    class_vectors = embed_column(fitted, prompts, texts[0])
    if len(class_vectors.rows) != len(names):
        raise DataError("some class prompts could not be embedded (empty after tokenising?); use other names")
    inputs = embed_column(fitted, data, column)
    scale = float(model.aligner.scale().detach())
    logits = scale * inputs.vectors @ class_vectors.vectors.T  # [n, K]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    table = np.full((inputs.n_rows, len(names)), np.nan)
    table[inputs.rows] = probs
    out = pd.DataFrame(table, columns=names)
    predicted = pd.Series([None] * inputs.n_rows, dtype=object)
    predicted.iloc[inputs.rows] = np.asarray(names, dtype=object)[probs.argmax(axis=1)]
    out.insert(0, "predicted", predicted)
    return out
