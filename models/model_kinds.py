"""Which class reads a saved model's weights: transformers' sequence classifier (a fine-tune),
or one of the app's own (``models.sentence_head`` for SetFit, ``models.ensemble`` for a seed
ensemble), as the marker in its config.json says."""

from __future__ import annotations

HEAD_MARKER = "casewise_head"


def model_class(config_json: dict):
    kind = config_json.get(HEAD_MARKER)
    if kind is None:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification
    from models.ensemble import ENSEMBLE_HEAD, SeedEnsemble
    from models.sentence_head import SENTENCE_HEAD, SentenceClassifier

    kinds = {SENTENCE_HEAD: SentenceClassifier, ENSEMBLE_HEAD: SeedEnsemble}
    if kind not in kinds:
        from models.errors import DataError

        raise DataError(f"This model was saved by a newer Casewise (model kind {kind!r}); "
                        "update Casewise to read it.")
    return kinds[kind]
