"""The model SetFit training leaves behind (``models.setfit_recipe``), as the app reads it: the
encoder's mean-pooled, L2-normalised sentence embedding and a linear head. Kept apart from the
training code so that loading a model imports neither ``setfit`` nor its trainer."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

SENTENCE_HEAD = "sentence-linear"  # config.json's models.model_kinds.HEAD_MARKER


class SentenceClassifier(BertPreTrainedModel):
    """A linear head on the encoder's mean-pooled, L2-normalised token states: SetFit's
    sentence embedding and logistic regression, as a sequence classifier (``.logits``, and
    the hidden states when asked, as the app's inference reads them)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                output_hidden_states=None, **_: object) -> SequenceClassifierOutput:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                        token_type_ids=token_type_ids, output_hidden_states=output_hidden_states)
        hidden = out.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        embedding = torch.nn.functional.normalize(mean, dim=-1)
        return SequenceClassifierOutput(logits=self.classifier(embedding),
                                        hidden_states=out.hidden_states)
