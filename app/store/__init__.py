"""The case history: a SQLite (or any SQLAlchemy) database of cases, their predictions,
attributions, escalation decisions, LLM opinions and signed reviews, with a hash-chained
audit trail. ``open_store`` returns the ``CaseRepository``, the only way in.
"""

from app.paths import DB_FILE
from app.store.backups import backup_store, list_backups
from app.store.batch import NewCase
from app.store.database import open_store
from app.store.errors import (
    AppendOnlyViolation,
    CaseNotFound,
    InvalidRecord,
    InvalidReview,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreTimeout,
    StoreUnavailable,
    StoreVersionError,
)
from app.store.records import (
    AuditEvent,
    CasePage,
    CaseProgress,
    CaseRecord,
    CaseSummary,
    CaseWrite,
    ChainVerification,
    Judgement,
    Review,
    ReviewedCase,
    ReviewRecord,
    StoredRecord,
)
from app.store.repository import CaseRepository

__all__ = [
    "DB_FILE", "AppendOnlyViolation", "AuditEvent", "CaseNotFound", "CasePage", "CaseProgress",
    "CaseRecord", "CaseRepository", "CaseSummary", "CaseWrite", "ChainVerification",
    "InvalidRecord", "InvalidReview", "Judgement", "NewCase", "Review", "ReviewRecord",
    "ReviewedCase",
    "StoreCorrupt", "StoreError", "StoreLocked", "StoreReadOnly", "StoreTimeout",
    "StoreUnavailable", "StoreVersionError",
    "StoredRecord",
    "backup_store", "list_backups", "open_store",
]
