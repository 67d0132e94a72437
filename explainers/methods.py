"""The attribution methods by name, in a module that imports nothing (the CLI lists them).

shap's explainers (partition, permutation) and the in-house estimators (explainers.estimators):
"exact" (every subset), "kernel" (paired KernelSHAP from zero), "refined" (the partition pass,
then KernelSHAP rounds from it until the top words settle), "amortized" (the model's amortized
explainer alone), and "auto", which picks among them (explainers.attribution.resolve_method).
"""

METHODS = ("auto", "partition", "permutation", "exact", "kernel", "refined", "amortized")
SAMPLED = ("exact", "kernel", "refined", "amortized", "amortized-refined")
TREE_METHODS = ("partition", "refined")  # the ones that run shap's Partition explainer
DEFAULT_METHOD = "auto"
