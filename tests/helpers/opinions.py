"""A case, its evidence and the label set the second-opinion tests share."""

from __future__ import annotations

from explainers.prompts import Evidence

LABELS = ["negative", "neutral", "positive"]
CASE = "After two weeks the rash was worse and the headaches never stopped."
EVIDENCE = Evidence(label="negative", probabilities={"negative": 0.62, "neutral": 0.25,
                                                      "positive": 0.13},
                    prediction_set=("negative", "neutral"),
                    reasons=("confidence 0.62 is below the certified threshold 0.84",),
                    top_words=(("worse", 0.21), ("rash", 0.12), ("stopped", -0.05)))
VALUES = {"worse": 0.21, "rash": 0.12, "stopped": -0.05, "headaches": 0.02}
