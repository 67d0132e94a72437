"""The case history: a table over the repository's pages, with search, filters and sorting.

The table model never holds the whole history: it knows the number of matching cases (so the
scroll bar is right from the first page) and fetches pages of ``PAGE_SIZE`` rows on the
database worker as rows come into view. One page is in flight at a time; while the user drags
the scroll bar, only the most recently wanted pages are kept in the queue, so a fling to the
end of 100,000 cases does not leave hundreds of stale queries behind it. Rows whose page is
still loading show a placeholder. A refresh keeps showing the old rows until the new ones
arrive, so the table never flashes empty.

The selection is kept as case ids, not row numbers: new cases arrive on top, a sort or a filter
moves every row. As each page arrives, its rows showing a selected case are selected again; a
selected case whose page is not here yet stays selected but no row is highlighted for it, and
one no longer in the list (every page loaded, not in any) is dropped. The case actions name
the cases they act on. In blind review (a setting) the model's answer of a case without a
review is hidden: its cells, the filters and the orders that would tell it, its trail and PDF.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.desktop import open_file
from app.ui.icons import icon
from app.ui.signatures import display_name
from app.ui.tasks import SerialisedStore, Task, format_duration, if_alive

PAGE_SIZE = 100
MAX_QUEUED_PAGES = 8  # a screenful is one or two pages; older wishes are dropped
SEARCH_DEBOUNCE_MS = 300
REFRESH_THROTTLE_MS = 500
PLACEHOLDER = "…"
COMBO_CHARS = 6  # the filter combos' narrowest, in characters
COMBO_MAX_WIDTH = 240  # px: their widest
HIDDEN = "hidden (blind)"  # a cell of the model's answer, in blind review, before a review
CASE_ID_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort_key: str | None = None  # what find_cases sorts by, when it can
    sample: str = ""  # a typical cell: the column is as wide as it (or its title), no wider


# Narrow columns sized by their contents in the window's font, so that in a 1280-pixel
# window the Text column, which takes the rest, still shows a good part of each case.
COLUMNS = (
    Column("id", "Case", "id", "000000"),
    Column("created", "Created", "created", "2026-12-31 23:59"),
    Column("label", "Label", "label", HIDDEN),
    Column("confidence", "Confidence", "confidence", "0.00"),
    Column("decision", "Decision", None, "escalated"),
    Column("review", "Review", None, "not reviewed"),
    Column("reviewer", "Reviewer", None, "reviewer"),
    Column("model", "Model", None, "model-2026"),  # elided; the tooltip has it all
    Column("source", "Source", None, "cases.csv:000"),
    Column("preview", "Text", None, ""),
)
ICON_ROOM = 24  # the icon of a decision or review cell, and the sort indicator of a title
_COLUMN = {c.key: i for i, c in enumerate(COLUMNS)}
# What tells the model's answer: hidden in blind review until the case has a review.
BLIND_COLUMNS = frozenset(_COLUMN[key] for key in ("label", "confidence", "decision"))
BLIND_SORTS = frozenset(("label", "confidence"))
_ROOT = QModelIndex()


@dataclass(frozen=True)
class HistoryQuery:
    """What the table shows: find_cases's filters and the sort (None = newest first, or the
    best matches first while searching)."""

    search: str = ""
    label: str | None = None
    escalated: bool | None = None
    reviewed: bool | None = None
    reviewer: str | None = None
    model_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str | None = None

    def unaffected_by_records(self) -> bool:
        """Whether a case's new records or review can neither move it in this list nor
        take it out (then its row is updated in place)."""
        filters = (self.label, self.escalated, self.reviewed, self.reviewer, self.model_id)
        return all(f is None for f in filters) and \
            self.effective_sort().lstrip("-") in ("created", "id", "relevance")

    def effective_sort(self) -> str:
        if self.sort:
            return self.sort
        return "relevance" if re.search(r"\w", self.search) else "-created"

    def describe(self) -> str:
        """The filters in words, for the summary page of a filtered export."""
        parts = [f"text matching {self.search.strip()!r}"] if self.search.strip() else []
        parts += [f"label {self.label}"] if self.label else []
        if self.escalated is not None:
            parts.append("escalated" if self.escalated else "decided automatically")
        if self.reviewed is not None:
            parts.append("reviewed" if self.reviewed else "not reviewed")
        parts += [f"signed by {self.reviewer}"] if self.reviewer else []
        parts += [f"model {self.model_id}"] if self.model_id else []
        parts += [f"created from {self.date_from}"] if self.date_from else []
        parts += [f"created to {self.date_to}"] if self.date_to else []
        return "All cases" + (" with " + ", ".join(parts) if parts else "") + \
            f", sorted by {self.effective_sort()}"

    def find_kwargs(self) -> dict[str, Any]:
        return {"search": self.search.strip() or None, "label": self.label,
                "escalated": self.escalated, "reviewed": self.reviewed,
                "reviewer": self.reviewer, "model_id": self.model_id,
                "date_from": self.date_from, "date_to": self.date_to,
                "sort": self.effective_sort()}


@dataclass(frozen=True)
class Row:
    """One case as the table shows it, formatted once when its page arrives."""

    case_id: int
    cells: tuple[str, ...]
    escalated: bool
    review_decision: str | None
    tooltip: str
    audit_sample: bool = False  # its answer stays hidden until someone judges it


def row_of(item) -> Row:
    """A ``CaseSummary`` as table cells."""
    review = item.review
    cells = (str(item.id), _local_time(item.created), item.label or "—",
             "—" if item.confidence is None else f"{item.confidence:.2f}",
             {"auto": "auto", "escalate": "escalated"}.get(item.escalation or "", "—"),
             _review_text(review), display_name(review.reviewer) if review else "",
             item.model_id or "—", item.source, " ".join(item.preview.split()))
    tooltip = item.preview + (f"\n\nReview: {review.reason}" if review and review.reason else "")
    return Row(item.id, cells, item.escalation == "escalate",
               review.decision if review else None, tooltip, item.audit_sample)


def _review_text(review) -> str:
    if review is None:
        return "not reviewed"
    if review.decision == "override":
        return f"overridden → {review.label}"
    return {"accept": "accepted", "defer": "deferred"}.get(review.decision, review.decision)


def _local_time(iso_time: str) -> str:
    try:
        return datetime.fromisoformat(iso_time).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso_time


class CaseTableModel(QAbstractTableModel):
    """Pages of case summaries fetched on demand from ``store.find_cases``."""

    loading_changed = Signal(bool)
    total_changed = Signal(int)
    page_fetched = Signal(int, float)  # page number, seconds from request to arrival
    sort_refused = Signal(str)  # why the list cannot be sorted by that column
    # A page's rows are in: first row, last row, and whether they replaced rows on screen
    # (a refresh or new filter: the same row numbers may now be other cases).
    rows_arrived = Signal(int, int, bool)

    def __init__(self, context: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.query = HistoryQuery()
        self._generation = 0
        self._total = 0
        self._total_known = False
        self._reset_on_arrival = True
        self._pages: dict[int, tuple[Row, ...]] = {}
        self._stale: dict[int, tuple[Row, ...]] = {}  # shown while a refresh loads
        self._wanted: OrderedDict[int, float] = OrderedDict()
        self._failed_pages: set[int] = set()
        self._in_flight: tuple[int, int] | None = None  # (generation, page)
        self._dispatch_scheduled = False
        self._arriving = False
        self.blind = False  # hide the model's answer of the cases nobody reviewed yet

    # -- Qt's model interface -------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else self._total

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole and COLUMNS[section].sort_key is None:
            return f"{COLUMNS[section].title} (the list cannot be sorted by this column)"
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= self._total:
            return None
        row = self.row_at(index.row())
        if row is None:
            return self._placeholder(index.column(), role)
        return self._cell(row, index.column(), role)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = COLUMNS[column].sort_key
        if key is None:
            self.sort_refused.emit("The list can be sorted by case, created, label and "
                                   "confidence.")
            return
        if self.blind and key in BLIND_SORTS:
            self.sort_refused.emit(f"Blind review: the list is not sorted by {key} while the "
                                   "model's answers are hidden (the order would tell them).")
            return
        descending = order == Qt.SortOrder.DescendingOrder
        wanted = ("-" if descending else "") + key
        if wanted != self.query.effective_sort():  # the view re-sorts when sorting is enabled
            self.set_query(replace(self.query, sort=wanted))

    # -- what the view asks ---------------------------------------------------------------------
    def row_at(self, row: int) -> Row | None:
        """The row if its page is here (or, during a refresh, its old page); else None, and
        the page is asked for."""
        page = row // PAGE_SIZE + 1
        rows = self._pages.get(page)
        if rows is None:
            self._want(page)
            rows = self._stale.get(page)
        offset = row - (page - 1) * PAGE_SIZE
        return rows[offset] if rows is not None and offset < len(rows) else None

    def case_id_at(self, row: int) -> int | None:
        found = self.row_at(row) if 0 <= row < self._total else None
        return found.case_id if found else None

    def loaded_case_id(self, row: int) -> int | None:
        """The case shown at ``row`` if its page (or its old page) is here; asks for nothing
        (for scanning selections, which may span pages nobody looks at)."""
        page, offset = divmod(row, PAGE_SIZE)
        rows = self._pages.get(page + 1)
        if rows is None:
            rows = self._stale.get(page + 1)
        return rows[offset].case_id if rows is not None and offset < len(rows) else None

    def row_for_case(self, case_id: int) -> Row | None:
        """The case's row if a page here holds it (the newest answer first)."""
        for pages in (self._pages, self._stale):
            for rows in pages.values():
                found = next((row for row in rows if row.case_id == case_id), None)
                if found is not None:
                    return found
        return None

    def all_loaded(self) -> bool:
        """Every page of the current query is here: a case not in them is not in the list."""
        pages = -(-self._total // PAGE_SIZE)
        return self._total_known and all(p in self._pages for p in range(1, pages + 1))

    def loaded_ids(self) -> set[int]:
        return {row.case_id for rows in self._pages.values() for row in rows}

    def shown_ids(self) -> set[int]:
        """The cases some row shows now (a page, or its old page while it reloads)."""
        pages = {**self._stale, **self._pages}
        return {row.case_id for rows in pages.values() for row in rows}

    @property
    def changing_rows(self) -> bool:
        """A page is being put in: selection changes now are the model's, not the user's."""
        return self._arriving

    @property
    def total(self) -> int:
        return self._total

    @property
    def loading(self) -> bool:
        return self._in_flight is not None

    @property
    def settled(self) -> bool:
        """The number of matches of the current query is known."""
        return self._total_known

    def cached_pages(self) -> int:
        return len(self._pages)

    # -- queries ----------------------------------------------------------------------------------
    def set_query(self, query: HistoryQuery) -> None:
        """Show another filter or sort: the old rows stay until the first new page arrives,
        then the table is reset."""
        self.query = query
        self._start_generation(reset=True)

    def update_case(self, summary) -> bool:
        """Put one case's new row (a write's ``CaseSummary``) in place, without a fetch, when
        it is shown and the list's filters and order cannot move it; False when a refresh is
        needed instead."""
        if not self.query.unaffected_by_records():
            return False
        for page, rows in self._pages.items():
            for offset, row in enumerate(rows):
                if row.case_id == summary.id:
                    self._pages[page] = (*rows[:offset], row_of(summary), *rows[offset + 1:])
                    index = (page - 1) * PAGE_SIZE + offset
                    self.dataChanged.emit(self.index(index, 0),
                                          self.index(index, len(COLUMNS) - 1))
                    return True
        return False

    def set_blind(self, blind: bool) -> None:
        """Hide (or show again) the model's answer of unreviewed cases; rows are repainted."""
        if blind != self.blind:
            self.blind = blind
            if self._total:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(self._total - 1, len(COLUMNS) - 1))

    def refresh(self) -> None:
        """Fetch again what is shown (the history changed): rows are updated in place."""
        self._start_generation(reset=False)
        if self._total:  # the view repaints what it shows, and so asks for those pages again
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self._total - 1, len(COLUMNS) - 1))

    def _start_generation(self, reset: bool) -> None:
        self._generation += 1
        # Old rows stay on screen until the answer comes: for a new filter only until the
        # reset, for a refresh until each page is replaced.
        self._stale = dict(self._pages) if reset else {**self._stale, **self._pages}
        self._pages, self._failed_pages = {}, set()
        self._wanted.clear()
        self._total_known = False
        self._reset_on_arrival = reset
        self._want(1)

    # -- fetching ---------------------------------------------------------------------------------
    def _want(self, page: int) -> None:
        if page in self._failed_pages or page in self._pages \
                or self._in_flight == (self._generation, page):
            return
        self._wanted.pop(page, None)
        self._wanted[page] = time.monotonic()
        while len(self._wanted) > MAX_QUEUED_PAGES:
            self._wanted.popitem(last=False)  # the oldest wish: scrolled past long ago
        if not self._dispatch_scheduled:  # not from inside data(): the view is painting
            self._dispatch_scheduled = True
            QTimer.singleShot(0, if_alive(self, self._dispatch))

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        store = self.context.store
        if self._in_flight is not None or store is None:
            return
        while self._wanted:
            page, asked = self._wanted.popitem(last=True)  # the newest wish first
            if page not in self._pages:
                self._fetch(store, page, asked)
                return

    def _fetch(self, store, page: int, asked: float) -> None:
        generation, kwargs = self._generation, self.query.find_kwargs()
        self._in_flight = (generation, page)
        self.loading_changed.emit(True)
        task = self.context.runner.db(
            "case history page",
            lambda: store.find_cases(**kwargs, page=page, page_size=PAGE_SIZE), owner=self)
        task.on_success(lambda result: self._arrived(generation, page, result, asked)) \
            .on_failure(lambda _message: self._page_failed(generation, page)) \
            .on_finished(self._fetch_done).start()

    def _fetch_done(self) -> None:
        self._in_flight = None
        self.loading_changed.emit(False)
        self._dispatch()

    def _page_failed(self, generation: int, page: int) -> None:
        # The runner already told the user; no retry until the next refresh (no retry loop).
        if generation == self._generation:
            self._failed_pages.add(page)

    def _arrived(self, generation: int, page: int, result, asked: float) -> None:
        if generation != self._generation:
            return  # an answer to an old question
        replaced = page in self._stale
        self._arriving = True
        try:
            first, last = self._put_page(page, tuple(row_of(item) for item in result.items),
                                         result.total)
        finally:
            self._arriving = False
        if last >= first:
            self.rows_arrived.emit(first, last, replaced)
        self.page_fetched.emit(page, time.monotonic() - asked)

    def _put_page(self, page: int, rows: tuple[Row, ...], total: int) -> tuple[int, int]:
        if not self._total_known:
            self._adopt_total(total)
        elif total != self._total:
            self._resize(total)
        self._pages[page] = rows
        first = (page - 1) * PAGE_SIZE
        last = min(first + PAGE_SIZE, self._total) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        return first, last

    def _adopt_total(self, total: int) -> None:
        self._total_known = True
        if self._reset_on_arrival:
            self.beginResetModel()
            self._total, self._stale = total, {}
            self.endResetModel()
        else:
            self._resize(total)
        self.total_changed.emit(total)

    def _resize(self, total: int) -> None:
        """More or fewer matches than before: rows are added or removed at the end, and the
        pages re-fetched show which ones they are."""
        if total > self._total:
            self.beginInsertRows(QModelIndex(), self._total, total - 1)
            self._total = total
            self.endInsertRows()
        elif total < self._total:
            self.beginRemoveRows(QModelIndex(), total, self._total - 1)
            self._total = total
            self.endRemoveRows()
        self.total_changed.emit(total)

    # -- cells ------------------------------------------------------------------------------------
    def _placeholder(self, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return PLACEHOLDER if column in (0, _COLUMN["preview"]) else ""
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("#8a96a3")
        if role == Qt.ItemDataRole.ToolTipRole:
            return "loading…"
        return None

    def _cell(self, row: Row, column: int, role: int) -> Any:
        if role == CASE_ID_ROLE:
            return row.case_id
        # An audit sample is judged blind whatever the setting: the list must not tell it.
        if (self.blind or row.audit_sample) and row.review_decision is None \
                and column in BLIND_COLUMNS:
            return self._hidden(role)
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == _COLUMN["preview"]:
            return row.tooltip
        if role == Qt.ItemDataRole.ToolTipRole and column in (_COLUMN["model"],
                                                              _COLUMN["source"]):
            return row.cells[column]  # the column is narrow: the whole id, when elided
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, _COLUMN["confidence"]):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(row, column)
        return None

    @staticmethod
    def _hidden(role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return HIDDEN
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("#8a96a3")
        if role == Qt.ItemDataRole.ToolTipRole:
            return "Blind review: hidden until a first judgement of the case is recorded"
        return None

    @staticmethod
    def _decoration(row: Row, column: int) -> Any:
        if column == _COLUMN["review"] and row.review_decision:
            return icon({"accept": "accept", "override": "override"}.get(row.review_decision,
                                                                         "defer"))
        if column == _COLUMN["decision"] and row.escalated:
            return icon("llm")
        return None


class HistoryView(QWidget):
    """The case history: ``historyTable``, ``historySearch``, filters and the case actions."""

    open_case = Signal(int)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = CaseTableModel(context, self)
        self.last_task: Task | None = None  # the latest export/verify/trail task (for tests)
        self._export_task: Task | None = None
        self.trail_dialog = None  # the latest trail opened from here
        # The selection is kept as case ids (in the order picked), not row numbers: a refresh
        # puts new cases on top and a sort or filter moves every row, so a row number would
        # name another case. Pages arrive later; their rows are selected again then.
        self._selected: dict[int, None] = {}
        self._current_id: int | None = None
        self._restoring = False  # the view selects rows itself: not the user's choice
        self._verified: tuple[str, str] | None = None  # (status text, HH:MM) of the last check
        self._build()
        self._connect()
        self._fill_filter_choices()
        if context.store is not None:
            self.model.set_query(self.model.query)

    # -- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._build_toolbar())
        layout.addLayout(self._build_search_row())
        layout.addLayout(self._build_filter_row())
        self.table = self._build_table()
        layout.addWidget(self.table, 1)
        self.empty_note = QLabel("No case matches these filters.", objectName="placeholderNote")
        self.empty_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_note.hide()
        layout.addWidget(self.empty_note)
        layout.addLayout(self._build_status_row())
        self._set_tab_order()

    def _action(self, text: str, icon_name: str, slot, shortcut: str | None = None,
                tip: str = "") -> QAction:
        action = QAction(icon(icon_name), text, self)
        action.triggered.connect(slot)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            # Only while the history has focus: the main window owns the global shortcuts.
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{tip or text} ({shortcut})" if shortcut else (tip or text))
        self.addAction(action)
        return action

    def _build_toolbar(self) -> QToolBar:
        self.open_action = self._action("Open case", "open", self._open_current, None,
                                        "Open the case in the case view (Enter)")
        self.trail_action = self._action("Open trail", "history", self._open_trail, "Ctrl+T",
                                         "Everything stored about the case, read-only")
        self.export_case_action = self._action("Export case to PDF…", "export",
                                               self._export_selected, "Ctrl+E")
        self.export_filtered_action = self._action(
            "Export filtered to PDF…", "export", self._export_filtered, "Ctrl+Shift+E",
            "Every case matching the filters, in one PDF")
        self.verify_action = self._action("Verify audit trail", "verify", self.verify_trail,
                                          None, "Check the hash chain of the whole history")
        self.refresh_action = self._action("Refresh", "history", self.model.refresh, "F5")
        self._action("Search", "analyze", self._focus_search, "Ctrl+F")  # keyboard only
        bar = QToolBar("Case history", self)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.open_action, self.trail_action, self.export_case_action,
                       self.export_filtered_action, self.verify_action):
            bar.addAction(action)
        return bar

    def _build_search_row(self) -> QHBoxLayout:
        """Search, who signed and when: the row that takes text and dates."""
        row = QHBoxLayout()
        self.search = QLineEdit(objectName="historySearch")
        self.search.setPlaceholderText("Search the case texts (all words must occur; "
                                       "word* matches a prefix)")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search the case history")
        self.reviewer_filter = QLineEdit(objectName="historyReviewerFilter")
        self.reviewer_filter.setPlaceholderText("Reviewer")
        self.reviewer_filter.setAccessibleName("Reviewer who signed the latest review")
        self.reviewer_filter.setClearButtonEnabled(True)
        self.from_check, self.from_date = self._date_filter("From", "historyDateFrom", -30)
        self.to_check, self.to_date = self._date_filter("To", "historyDateTo", 0)
        row.addWidget(self.search, 3)
        row.addWidget(self.reviewer_filter, 1)
        for widget in (self.from_check, self.from_date, self.to_check, self.to_date):
            row.addWidget(widget)
        return row

    def _build_filter_row(self) -> QHBoxLayout:
        """The choices from lists, then the count and a way back to everything. Two rows, so
        the History fits beside the LLM pane in a 1024-px window."""
        row = QHBoxLayout()
        self.label_filter = self._combo("historyLabelFilter", "Label", [("Any label", None)])
        self.decision_filter = self._combo("historyDecisionFilter", "Decision", [
            ("Auto or escalated", None), ("Auto", False), ("Escalated", True)])
        self.reviewed_filter = self._combo("historyReviewedFilter", "Reviewed", [
            ("Reviewed or not", None), ("Reviewed", True), ("Not reviewed", False)])
        self.model_filter = self._combo("historyModelFilter", "Model", [("Any model", None)])
        for widget in (self.label_filter, self.decision_filter, self.reviewed_filter,
                       self.model_filter):
            # Narrow when the pane leaves little room, their whole text when there is room.
            widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            widget.setMaximumWidth(COMBO_MAX_WIDTH)
            row.addWidget(widget, 1)
        self.clear_button = QPushButton("Clear filters")
        self.count_label = QLabel("")
        row.addWidget(self.clear_button)
        row.addWidget(self.count_label)
        return row

    def _combo(self, name: str, accessible: str, choices: list[tuple[str, Any]]) -> QComboBox:
        combo = QComboBox(objectName=name)
        combo.setAccessibleName(accessible)
        # As narrow as a short choice: a long model id must not widen the window (the
        # filters share a 1024-px window with the LLM pane); the list shows it whole.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARS)
        for text, value in choices:
            combo.addItem(text, value)
        return combo

    def _date_filter(self, text: str, name: str, days: int) -> tuple[QCheckBox, QDateEdit]:
        check = QCheckBox(text)
        edit = QDateEdit(QDate.currentDate().addDays(days), objectName=name)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setEnabled(False)
        edit.setAccessibleName(f"Created {text.lower()}")
        check.toggled.connect(edit.setEnabled)
        return check, edit

    def _build_table(self) -> QTableView:
        table = QTableView(objectName="historyTable")
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.horizontalHeader().setSortIndicator(_COLUMN["created"],
                                                  Qt.SortOrder.DescendingOrder)
        table.setSortingEnabled(True)
        vertical = table.verticalHeader()
        vertical.hide()
        # Fixed row heights: the view never asks 100,000 rows for their size.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setStretchLastSection(True)  # the Text column takes what the others leave
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for i, column in enumerate(COLUMNS[:-1]):
            table.setColumnWidth(i, self._column_width(table, column))
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        table.addActions([self.open_action, self.trail_action, self.export_case_action,
                          self.export_filtered_action, self.verify_action])
        table.setAccessibleName("Cases")
        table.installEventFilter(self)
        return table

    @staticmethod
    def _column_width(table: QTableView, column: Column) -> int:
        cell = table.fontMetrics().horizontalAdvance(column.sample)
        if column.key in ("decision", "review"):
            cell += ICON_ROOM
        title = table.horizontalHeader().fontMetrics().horizontalAdvance(column.title)
        return max(cell, title + ICON_ROOM) + 12

    def _build_status_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.status = QLabel("", objectName="historyStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(objectName="historyProgress")
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self._cancel_export)
        row.addWidget(self.status, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        return row

    def _set_tab_order(self) -> None:
        chain = [self.search, self.clear_button, self.label_filter, self.decision_filter,
                 self.reviewed_filter, self.reviewer_filter, self.model_filter, self.from_check,
                 self.from_date, self.to_check, self.to_date, self.table, self.cancel_button]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    # -- wiring --------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self.apply_filters)
        self.reviewer_filter.textChanged.connect(self._search_timer.start)
        for combo in (self.label_filter, self.decision_filter, self.reviewed_filter,
                      self.model_filter):
            combo.currentIndexChanged.connect(self.apply_filters)
        for check in (self.from_check, self.to_check):
            check.toggled.connect(self.apply_filters)
        for edit in (self.from_date, self.to_date):
            edit.dateChanged.connect(self.apply_filters)
        self.clear_button.clicked.connect(self.clear_filters)
        self.table.doubleClicked.connect(lambda index: self._emit_open(index.row()))
        self.model.total_changed.connect(self._show_count)
        self.model.loading_changed.connect(lambda _busy: self._show_count(self.model.total))
        self.model.sort_refused.connect(self._restore_sort_indicator)
        self.model.rows_arrived.connect(self._rows_arrived)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(self._selection_edited)
        selection.currentChanged.connect(self._current_moved)
        # A click that leaves the rows' selection as it was still drops a selected case no
        # row shows (after a sort, say): the user sees one row selected, so that is all.
        self.table.clicked.connect(self._selection_edited)
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_THROTTLE_MS)
        self._refresh_timer.timeout.connect(self.model.refresh)
        self.context.cases_changed.connect(self._cases_changed)
        self.context.store_ready.connect(lambda _store: self.model.set_query(self.model.query))
        self.context.workbench_changed.connect(lambda _bench: self._fill_filter_choices())
        self.context.settings_changed.connect(self._apply_blind)
        self._apply_blind(self.context.settings)
        self._update_case_actions()

    def _cases_changed(self, summary=None) -> None:
        """A write's row updates in place; anything else (a new case, a batch) refreshes."""
        self._verification_stale()
        if summary is not None and self.model.update_case(summary):
            return
        # Throttled, not debounced: a running batch emits often and must still show progress.
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            self._open_current()
            return True
        return super().eventFilter(watched, event)

    # -- filters ---------------------------------------------------------------------------------
    def current_query(self) -> HistoryQuery:
        reviewer = self.reviewer_filter.text().strip() or None
        return HistoryQuery(
            search=self.search.text(), label=self.label_filter.currentData(),
            escalated=self.decision_filter.currentData(),
            reviewed=self.reviewed_filter.currentData(), reviewer=reviewer,
            model_id=self.model_filter.currentData(),
            date_from=self.from_date.date().toPython() if self.from_check.isChecked() else None,
            date_to=self.to_date.date().toPython() if self.to_check.isChecked() else None,
            sort=self.model.query.sort)

    def apply_filters(self) -> None:
        self._search_timer.stop()
        query = self.current_query()
        if query != self.model.query:
            self.model.set_query(query)
            self.sync_sort_indicator()
            self.table.scrollToTop()

    def clear_filters(self) -> None:
        widgets = (self.search, self.reviewer_filter, self.label_filter, self.decision_filter,
                   self.reviewed_filter, self.model_filter, self.from_check, self.to_check)
        for widget in widgets:
            widget.blockSignals(True)
        self.search.clear()
        self.reviewer_filter.clear()
        for combo in (self.label_filter, self.decision_filter, self.reviewed_filter,
                      self.model_filter):
            combo.setCurrentIndex(0)
        self.from_check.setChecked(False)
        self.to_check.setChecked(False)
        for widget in widgets:
            widget.blockSignals(False)
        self.from_date.setEnabled(False)
        self.to_date.setEnabled(False)
        self.apply_filters()

    def _fill_filter_choices(self) -> None:
        """Labels of the loaded model and the models of the data directory (read off the GUI
        thread: the registry reads a file per model)."""
        data_dir = self.context.data_dir

        def records(_ctx) -> list:
            from app.casework import model_registry

            return model_registry(data_dir).records()

        self.context.runner.run("list models", records, owner=self) \
            .on_success(self._set_choices).start()

    def _set_choices(self, records: list) -> None:
        labels = list(self.context.workbench.labels) if self.context.workbench else []
        for record in records:
            labels += [label for label in record.labels if label not in labels]
        self._refill(self.label_filter, [(label, label) for label in labels])
        self._refill(self.model_filter, [(r.id + (" (active)" if r.active else ""), r.id)
                                         for r in reversed(records)])

    @staticmethod
    def _refill(combo: QComboBox, choices: list[tuple[str, str]]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        while combo.count() > 1:
            combo.removeItem(1)
        for text, value in choices:
            combo.addItem(text, value)
        if current is not None and combo.findData(current) < 0:
            combo.addItem(current, current)  # keep a filter the user set
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def _restore_sort_indicator(self, reason: str) -> None:
        self.sync_sort_indicator()
        self.status.setText(reason)

    # -- blind review ----------------------------------------------------------------------------
    def _apply_blind(self, settings) -> None:
        """In blind review the list must not tell the model's answer of a case nobody
        reviewed yet: its cells are hidden, and neither a filter by label or decision nor an
        order by label or confidence is offered (which cases match, or their order, would
        tell it)."""
        blind = bool(getattr(settings, "blind_review", False))
        self.model.set_blind(blind)
        tip = "Not in blind review: it would tell the model's answers" if blind else ""
        for combo in (self.label_filter, self.decision_filter):
            combo.setEnabled(not blind)
            combo.setToolTip(tip)
        if not blind:
            return
        revealing = (self.label_filter.currentIndex() > 0 or
                     self.decision_filter.currentIndex() > 0)
        if revealing or self.model.query.effective_sort().lstrip("-") in BLIND_SORTS:
            self._drop_revealing_filters()

    def _drop_revealing_filters(self) -> None:
        for combo in (self.label_filter, self.decision_filter):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        query = self.current_query()
        if query.effective_sort().lstrip("-") in BLIND_SORTS:
            query = replace(query, sort=None)  # newest first (or the best matches)
        if query != self.model.query:
            self.model.set_query(query)
            self.table.scrollToTop()
        self.sync_sort_indicator()
        self.status.setText("Blind review: the label and decision filters and the order by "
                            "label or confidence are off (they would tell the model's answers).")

    def _blind_refusal(self, case_ids: list[int]) -> str | None:
        """Why an action showing the model's answer of these cases is refused, or None. A
        case whose row is not here counts as unreviewed: nothing is shown unless known."""
        if not self.model.blind:
            return None
        for case_id in case_ids:
            row = self.model.row_for_case(case_id)
            if row is None or row.review_decision is None:
                return (f"Blind review: record your judgement on case {case_id} first (open "
                        "it with Enter).")
        return None

    def sync_sort_indicator(self) -> None:
        """Show the sort in use (none while the best search matches come first)."""
        sort = self.model.query.effective_sort()
        column = next((i for i, c in enumerate(COLUMNS) if c.sort_key == sort.lstrip("-")), -1)
        order = (Qt.SortOrder.DescendingOrder if sort.startswith("-")
                 else Qt.SortOrder.AscendingOrder)
        header = self.table.horizontalHeader()
        header.blockSignals(True)  # the view would sort again on the signal
        header.setSortIndicator(column, order)
        header.blockSignals(False)
        header.viewport().update()

    def _show_count(self, total: int) -> None:
        loading = " (loading…)" if self.model.loading else ""
        self.count_label.setText(f"{total:,} case{'s' if total != 1 else ''}{loading}")
        self.empty_note.setVisible(total == 0 and self.model.settled)

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # -- the selected cases --------------------------------------------------------------------
    def selected_case_ids(self) -> list[int]:
        """The cases the user selected, in the order picked; they stay selected while the
        list refreshes, sorts or filters, until a case is known to have left the list."""
        return list(self._selected)

    def current_case_id(self) -> int | None:
        return self._current_id

    def _selection_edited(self, *_args: Any) -> None:
        """The user changed the selection: remember it by case id."""
        if self._restoring or self.model.changing_rows:
            return  # the model replaced rows, or the view re-selected its cases
        ids: dict[int, None] = {}
        if QGuiApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier:
            # Ctrl adds to the selection: a selected case no row shows now stays selected.
            shown = self.model.shown_ids()
            ids = {case_id: None for case_id in self._selected if case_id not in shown}
        for part in self.table.selectionModel().selection():
            for row in range(part.top(), part.bottom() + 1):
                case_id = self.model.loaded_case_id(row)
                if case_id is not None:  # a row still loading: taken when its page comes
                    ids[case_id] = None
        self._selected = ids
        self._current_moved(self.table.currentIndex())

    def _current_moved(self, current: QModelIndex, *_previous: Any) -> None:
        """The current row moved (alone, it selects nothing: the view moves it on focus)."""
        if self._restoring or self.model.changing_rows:
            return
        self._current_id = self.model.loaded_case_id(current.row()) if current.isValid() \
            else None
        self._update_case_actions()

    def _rows_arrived(self, first: int, last: int, replaced: bool) -> None:
        """A page is in: select its rows showing the selected cases, and only those."""
        if not replaced:  # rows the user selected while they were placeholders
            self._take_selected_rows(first, last)
        self._reselect(first, last)
        if self.model.all_loaded():  # a case in no page has left the list: forget it
            shown = self.model.loaded_ids()
            self._selected = {case_id: None for case_id in self._selected if case_id in shown}
            if self._current_id not in shown:
                self._current_id = None
        self._update_case_actions()

    def _take_selected_rows(self, first: int, last: int) -> None:
        selection = self.table.selectionModel()
        for row in range(first, last + 1):
            case_id = self.model.loaded_case_id(row)
            if case_id is not None and selection.isRowSelected(row, _ROOT):
                self._selected[case_id] = None

    def _reselect(self, first: int, last: int) -> None:
        model, selection = self.model, self.table.selectionModel()
        wanted, current_row = QItemSelection(), None
        for row in range(first, last + 1):
            case_id = model.loaded_case_id(row)
            if case_id in self._selected:
                wanted.select(model.index(row, 0), model.index(row, len(COLUMNS) - 1))
            if case_id is not None and case_id == self._current_id:
                current_row = row
        flag = QItemSelectionModel.SelectionFlag
        self._restoring = True
        try:
            selection.select(QItemSelection(model.index(first, 0),
                                            model.index(last, len(COLUMNS) - 1)),
                             flag.Deselect)
            selection.select(wanted, flag.Select)
            self._place_current(first, last, current_row)
        finally:
            self._restoring = False

    def _place_current(self, first: int, last: int, row: int | None) -> None:
        """The current row follows its case; where another case now is, there is none."""
        selection, current = self.table.selectionModel(), self.table.currentIndex()
        column = max(0, current.column())
        if row is not None:
            selection.setCurrentIndex(self.model.index(row, column),
                                      QItemSelectionModel.SelectionFlag.NoUpdate)
        elif current.isValid() and first <= current.row() <= last:
            selection.clearCurrentIndex()

    def _trail_case_id(self) -> int | None:
        """The case "Open trail" shows: the current one if selected, else the first."""
        if self._current_id in self._selected:
            return self._current_id
        return next(iter(self._selected), None)

    def _update_case_actions(self) -> None:
        """The case actions name the cases they act on, and are off with none selected."""
        ids, case_id = self.selected_case_ids(), self._trail_case_id()
        self.trail_action.setText("Open trail" if case_id is None
                                  else f"Open trail of case {case_id}")
        self.trail_action.setEnabled(case_id is not None)
        if len(ids) > 1:
            text = f"Export {len(ids)} cases to PDF…"
        else:
            text = f"Export case {ids[0]} to PDF…" if ids else "Export case to PDF…"
        self.export_case_action.setText(text)
        self.export_case_action.setEnabled(bool(ids) and not self._exporting())

    def _exporting(self) -> bool:
        return self._export_task is not None and not self._export_task.done

    def _emit_open(self, row: int) -> None:
        case_id = self.model.case_id_at(row)
        if case_id is not None:
            self.open_case.emit(case_id)

    def _open_current(self) -> None:
        index = self.table.currentIndex()
        if index.isValid():
            self._emit_open(index.row())

    def _open_trail(self) -> None:
        case_id = self._trail_case_id()
        if case_id is None:
            self.status.setText("Select a case to see its trail.")
            return
        refused = self._blind_refusal([case_id])  # the trail shows the prediction
        if refused:
            self.status.setText(refused)
            return
        from app.ui.case_trail import open_case_trail

        self.last_task = open_case_trail(self.context, case_id, self, self._trail_opened)

    def _trail_opened(self, dialog) -> None:
        self.trail_dialog = dialog

    # -- the audit trail ------------------------------------------------------------------------
    def verify_trail(self) -> Task | None:
        """Walk the whole hash chain on the database worker and say what it found."""
        store = self.context.store
        if store is None:
            self.status.setText("The case history is not open yet.")
            return None
        self.status.setText("Verifying the audit trail…")
        self.verify_action.setEnabled(False)
        task = self.context.runner.run("verify audit trail",
                                       lambda ctx: store.verify_chain(ctx.progress),
                                       pool="database", owner=self) \
            .on_progress(self._verify_progress).on_success(self._show_verification) \
            .on_finished(lambda: self.verify_action.setEnabled(True))
        self.last_task = task.start()
        return task

    def _verify_progress(self, progress) -> None:
        self.status.setText(f"Verifying the audit trail… {progress.fraction:.0%}")

    def _show_verification(self, result) -> None:
        if result.ok:
            text = f"Audit trail intact: {result.events:,} events verified."
            self.context.message.emit("info", text)
        else:
            text = (f"Audit trail BROKEN at event {result.first_broken_id}: {result.reason} "
                    f"({result.events:,} events checked).")
            self.context.message.emit("error", text)
        self.status.setText(text)
        self.status.setProperty("verified", result.ok)
        self._verified = (text, datetime.now().strftime("%H:%M"))

    def _verification_stale(self) -> None:
        """A verification speaks of the history as it was: after a change it is not a
        statement about the history shown."""
        if self._verified is None:
            return
        text, at = self._verified
        self._verified = None
        self.status.setProperty("verified", None)
        if self.status.text() == text:  # not if another message took its place
            self.status.setText(f"The history changed since the last verification (at {at}): "
                                "verify again.")

    # -- PDF export -----------------------------------------------------------------------------
    def _export_selected(self) -> None:
        ids = self.selected_case_ids()
        if not ids:
            self.status.setText("Select the case(s) to export.")
            return
        refused = self._blind_refusal(ids)  # before asking where: it would be refused
        if refused:
            self.status.setText(refused)
            return
        name = f"case-{ids[0]}.pdf" if len(ids) == 1 else f"cases-{len(ids)}.pdf"
        path = self._ask_pdf_path(name)
        if path:
            self.export_cases_to(ids, path)

    def _export_filtered(self) -> None:
        path = self._ask_pdf_path(f"cases-{date.today():%Y%m%d}.pdf")
        if path:
            self.export_filtered_to(path)

    def _ask_pdf_path(self, name: str) -> Path | None:
        folder = self.context.data_dir / "reports"
        path, _ = QFileDialog.getSaveFileName(self, "Export to PDF", str(folder / name),
                                              "PDF files (*.pdf)")
        if not path:
            return None
        return Path(path if path.lower().endswith(".pdf") else path + ".pdf")

    def export_cases_to(self, case_ids: list[int], path: Path) -> Task | None:
        """Export these cases to one PDF on the compute pool, with progress and cancel (not,
        in blind review, a case without a review: the PDF shows the prediction)."""
        refused = self._blind_refusal(case_ids)
        if refused:
            self.status.setText(refused)
            return None
        return self._start_export(lambda _store, _ctx: list(case_ids), path, None)

    def export_filtered_to(self, path: Path) -> Task | None:
        """Export every case matching the current filters (in the table's order); in blind
        review only a list of reviewed cases (the PDF shows the predictions)."""
        query = self.model.query
        if self.model.blind and query.reviewed is not True:
            self.status.setText("Blind review: the PDF shows the model's answers; choose "
                                "\"Reviewed\" in the filters to export the reviewed cases.")
            return None
        return self._start_export(lambda store, ctx: collect_case_ids(store, query, ctx), path,
                                  query.describe())

    def _start_export(self, ids_of, path: Path, selection: str | None) -> Task | None:
        store = self.context.store
        if store is None:
            self.status.setText("The case history is not open yet.")
            return None
        if self._export_task is not None and not self._export_task.done:
            self.status.setText("An export is already running.")
            return None
        serial, data_dir = SerialisedStore(store, self.context.runner), self.context.data_dir
        task = self.context.runner.run(
            "export PDF", lambda ctx: run_export(serial, ids_of(serial, ctx), Path(path),
                                                 data_dir, ctx, selection), owner=self)
        task.on_progress(self._export_progress).on_success(self._export_done) \
            .on_cancelled(lambda: self._export_ended("Export cancelled; nothing was kept.")) \
            .on_failure(lambda message: self._export_ended(f"Export failed: {message}"))
        self._export_started()
        self._export_task = self.last_task = task.start()
        return task

    def _export_started(self) -> None:
        self.status.setText("Exporting…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        for action in (self.export_case_action, self.export_filtered_action):
            action.setEnabled(False)

    def _export_progress(self, progress) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        left = (f", about {format_duration(progress.eta_seconds)} left"
                if progress.eta_seconds else "")
        self.status.setText(f"{progress.stage}: {progress.done:,} of {progress.total:,}{left}")

    def _export_done(self, result) -> None:
        self._export_ended(f"Exported {result.cases:,} case(s), {result.pages} page(s), to "
                           f"{result.path} in {result.seconds:.1f} s (SHA-256 "
                           f"{result.sha256[:12]}…).")
        self.context.offer.emit("info", f"Exported {result.cases} case(s) to {result.path}",
                                "Open PDF", lambda: open_file(result.path))

    def _export_ended(self, text: str) -> None:
        self.status.setText(text)
        self.progress.hide()
        self.cancel_button.hide()
        self.export_filtered_action.setEnabled(True)
        self._export_task = None  # ended (its done flag is set on the worker, maybe later)
        self._update_case_actions()

    def _cancel_export(self) -> None:
        if self._export_task is not None:
            self._export_task.cancel()
            self.status.setText("Cancelling the export…")


def collect_case_ids(store, query: HistoryQuery, ctx) -> list[int]:
    """Every case id matching ``query``, in its order, a large page at a time."""
    from app.store.queries import MAX_PAGE_SIZE
    from models.progress import Progress, raise_if_cancelled

    ids: list[int] = []
    page, total = 1, None
    while total is None or len(ids) < total:
        raise_if_cancelled(ctx.cancel)
        found = store.find_cases(**query.find_kwargs(), page=page, page_size=MAX_PAGE_SIZE)
        total = found.total
        if not found.items:
            break
        ids += [item.id for item in found.items]
        ctx.progress(Progress("collecting cases", len(ids), total))
        page += 1
    return ids


def run_export(store, case_ids: list[int], path: Path, data_dir: Path, ctx,
               selection: str | None = None):
    """The PDF export of ``app.reports.export`` (imported here: it loads reportlab). The
    export files itself in the audit trail."""
    from app.reports.export import export_cases
    from models.errors import CasewiseError
    from models.model_card import model_card_loader

    if not case_ids:
        raise CasewiseError("No case matches the filters: there is nothing to export.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return export_cases(store, case_ids, path, model_card_for=model_card_loader(data_dir),
                        progress=ctx.progress, cancel=ctx.cancel, selection=selection)
