"""Explanations of the classifier's decisions (SHAP attributions, faithfulness, LLM checks)."""
