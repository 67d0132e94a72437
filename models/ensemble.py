"""A seed ensemble as one model: several fine-tunes of the same encoder on the same data,
each from its own seed, answering together (the mean of their logits).

Deep ensembles are the best-known way to rank cases for selective prediction
(Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty Estimation using Deep
Ensembles", NeurIPS 2017). ``benchmarks/bench_small_data.py`` measured three seeds on the
demo's whole split: macro-F1 0.567 against 0.528, coverage at the guarantee 32.1 % against
29.5 %, at three times the training and prediction time — so it is an option, not the default.
The members are kept in one transformers model, so the app reads it as one classifier: its
calibration, policy and attributions are of the combined output, not of each member.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ENSEMBLE_HEAD = "seed-ensemble"  # config.json's models.model_kinds.HEAD_MARKER
ENSEMBLE_SIZE = 3


class SeedEnsemble(BertPreTrainedModel):
    """``config.ensemble_size`` BERT sequence classifiers; logits are their mean, hidden
    states (for the distance check) the first member's."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        size = int(getattr(config, "ensemble_size", ENSEMBLE_SIZE))
        self.members = torch.nn.ModuleList(BertForSequenceClassification(config)
                                           for _ in range(size))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                output_hidden_states=None, **_: object) -> SequenceClassifierOutput:
        outputs = [member(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids,
                          output_hidden_states=output_hidden_states and i == 0)
                   for i, member in enumerate(self.members)]
        logits = torch.stack([out.logits for out in outputs]).mean(0)
        return SequenceClassifierOutput(logits=logits, hidden_states=outputs[0].hidden_states)


def as_ensemble(members: list[BertForSequenceClassification]) -> SeedEnsemble:
    """One model holding the trained members' weights."""
    from models.model_kinds import HEAD_MARKER

    config = members[0].config.__class__.from_dict(members[0].config.to_dict())
    setattr(config, HEAD_MARKER, ENSEMBLE_HEAD)
    config.ensemble_size = len(members)
    config.architectures = ["SeedEnsemble"]
    model = SeedEnsemble(config)
    for target, member in zip(model.members, members, strict=True):
        target.load_state_dict(member.state_dict())
    return model.eval()
