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
    StoreVersionError,
)
from app.store.records import (
    AddedCase,
    AuditEvent,
    CasePage,
    CaseRecord,
    CaseSummary,
    ChainVerification,
    ReviewRecord,
    StoredRecord,
)
from app.store.repository import CaseRepository

__all__ = [
    "DB_FILE", "AddedCase", "AppendOnlyViolation", "AuditEvent", "CaseNotFound", "CasePage",
    "CaseRecord", "CaseRepository", "CaseSummary", "ChainVerification", "InvalidRecord",
    "InvalidReview", "NewCase", "ReviewRecord", "StoreCorrupt", "StoreError", "StoreLocked",
    "StoreReadOnly", "StoreVersionError", "StoredRecord", "backup_store", "list_backups",
    "open_store",
]
