"""The case history: a table over the repository's pages, with search, filters and sorting.

The table model never holds the whole history: it knows the number of matching cases (so the
scroll bar is right from the first page) and fetches pages of ``PAGE_SIZE`` rows on the
database worker as rows come into view. One page is in flight at a time; while the user drags
the scroll bar, only the most recently wanted pages are kept in the queue, so a fling to the
end of 100,000 cases does not leave hundreds of stale queries behind it. Rows whose page is
still loading show a placeholder. A refresh keeps showing the old rows until the new ones
arrive, so the table never flashes empty.
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
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence
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
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.signatures import display_name
from app.ui.tasks import SerialisedStore, Task, format_duration, if_alive

PAGE_SIZE = 100
MAX_QUEUED_PAGES = 8  # a screenful is one or two pages; older wishes are dropped
SEARCH_DEBOUNCE_MS = 300
REFRESH_THROTTLE_MS = 500
PLACEHOLDER = "…"
CASE_ID_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort_key: str | None = None  # what find_cases sorts by, when it can
    width: int = 100


COLUMNS = (
    Column("id", "Case", "id", 60),
    Column("created", "Created", "created", 135),
    Column("label", "Label", "label", 95),
    Column("confidence", "Confidence", "confidence", 85),
    Column("decision", "Decision", None, 120),
    Column("review", "Review", None, 130),
    Column("reviewer", "Reviewer", None, 100),
    Column("model", "Model", None, 150),
    Column("source", "Source", None, 120),
    Column("preview", "Text", None, 400),
)
_COLUMN = {c.key: i for i, c in enumerate(COLUMNS)}
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
               review.decision if review else None, tooltip)


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
    sort_refused = Signal()  # the column cannot be sorted by the store

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
            self.sort_refused.emit()
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
        rows = tuple(row_of(item) for item in result.items)
        if not self._total_known:
            self._adopt_total(result.total)
        elif result.total != self._total:
            self._resize(result.total)
        self._pages[page] = rows
        first = (page - 1) * PAGE_SIZE
        last = min(first + PAGE_SIZE, self._total) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        self.page_fetched.emit(page, time.monotonic() - asked)

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
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[column]
        if role == CASE_ID_ROLE:
            return row.case_id
        if role == Qt.ItemDataRole.ToolTipRole and column == _COLUMN["preview"]:
            return row.tooltip
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, _COLUMN["confidence"]):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(row, column)
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
        row = QHBoxLayout()
        self.search = QLineEdit(objectName="historySearch")
        self.search.setPlaceholderText("Search the case texts (all words must occur; "
                                       "word* matches a prefix)")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search the case history")
        self.clear_button = QPushButton("Clear filters")
        self.count_label = QLabel("")
        self.count_label.setMinimumWidth(110)
        row.addWidget(self.search, 1)
        row.addWidget(self.clear_button)
        row.addWidget(self.count_label)
        return row

    def _build_filter_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.label_filter = self._combo("historyLabelFilter", "Label", [("Any label", None)])
        self.decision_filter = self._combo("historyDecisionFilter", "Decision", [
            ("Auto or escalated", None), ("Auto", False), ("Escalated", True)])
        self.reviewed_filter = self._combo("historyReviewedFilter", "Reviewed", [
            ("Reviewed or not", None), ("Reviewed", True), ("Not reviewed", False)])
        self.model_filter = self._combo("historyModelFilter", "Model", [("Any model", None)])
        self.reviewer_filter = QLineEdit(objectName="historyReviewerFilter")
        self.reviewer_filter.setPlaceholderText("Reviewer")
        self.reviewer_filter.setAccessibleName("Reviewer who signed the latest review")
        self.reviewer_filter.setClearButtonEnabled(True)
        self.from_check, self.from_date = self._date_filter("From", "historyDateFrom", -30)
        self.to_check, self.to_date = self._date_filter("To", "historyDateTo", 0)
        for widget in (self.label_filter, self.decision_filter, self.reviewed_filter,
                       self.reviewer_filter, self.model_filter, self.from_check, self.from_date,
                       self.to_check, self.to_date):
            row.addWidget(widget)
        row.addStretch(1)
        return row

    def _combo(self, name: str, accessible: str, choices: list[tuple[str, Any]]) -> QComboBox:
        combo = QComboBox(objectName=name)
        combo.setAccessibleName(accessible)
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
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for i, column in enumerate(COLUMNS):
            table.setColumnWidth(i, column.width)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        table.addActions([self.open_action, self.trail_action, self.export_case_action,
                          self.export_filtered_action, self.verify_action])
        table.setAccessibleName("Cases")
        table.installEventFilter(self)
        return table

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
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_THROTTLE_MS)
        self._refresh_timer.timeout.connect(self.model.refresh)
        self.context.cases_changed.connect(self._cases_changed)
        self.context.store_ready.connect(lambda _store: self.model.set_query(self.model.query))
        self.context.workbench_changed.connect(lambda _bench: self._fill_filter_choices())

    def _cases_changed(self, summary=None) -> None:
        """A write's row updates in place; anything else (a new case, a batch) refreshes."""
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

    def _restore_sort_indicator(self) -> None:
        self.sync_sort_indicator()
        self.status.setText("The list can be sorted by case, created, label and confidence.")

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
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        if not rows and self.table.currentIndex().isValid():
            rows = [self.table.currentIndex().row()]
        ids = (self.model.case_id_at(row) for row in rows)
        return [case_id for case_id in ids if case_id is not None]

    def current_case_id(self) -> int | None:
        index = self.table.currentIndex()
        return self.model.case_id_at(index.row()) if index.isValid() else None

    def _emit_open(self, row: int) -> None:
        case_id = self.model.case_id_at(row)
        if case_id is not None:
            self.open_case.emit(case_id)

    def _open_current(self) -> None:
        index = self.table.currentIndex()
        if index.isValid():
            self._emit_open(index.row())

    def _open_trail(self) -> None:
        case_id = self.current_case_id()
        if case_id is None:
            self.status.setText("Select a case to see its trail.")
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

    # -- PDF export -----------------------------------------------------------------------------
    def _export_selected(self) -> None:
        ids = self.selected_case_ids()
        if not ids:
            self.status.setText("Select the case(s) to export.")
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
        """Export these cases to one PDF on the compute pool, with progress and cancel."""
        return self._start_export(lambda _store, _ctx: list(case_ids), path, None)

    def export_filtered_to(self, path: Path) -> Task | None:
        """Export every case matching the current filters (in the table's order)."""
        query = self.model.query
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
        self.context.message.emit("info", f"Exported {result.cases} case(s) to {result.path}")

    def _export_ended(self, text: str) -> None:
        self.status.setText(text)
        self.progress.hide()
        self.cancel_button.hide()
        for action in (self.export_case_action, self.export_filtered_action):
            action.setEnabled(True)

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
