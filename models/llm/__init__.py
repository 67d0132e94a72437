"""LLM backends for the second opinion: embedded (default), any local model, or an
OpenAI-compatible server. One interface: ``models.llm.base.LLMBackend``."""
