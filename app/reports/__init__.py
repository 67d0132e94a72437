"""The audit PDF: one case, or a batch with a summary page (reportlab; no Qt).

``export_cases`` writes it atomically and records it in the case history's audit trail;
``model_card_loader`` (``models.model_card``'s, re-exported) supplies the model cards it
summarises.
"""

from app.reports.export import ExportError, ExportResult, export_cases
from models.model_card import model_card_loader

__all__ = ["ExportError", "ExportResult", "export_cases", "model_card_loader"]
