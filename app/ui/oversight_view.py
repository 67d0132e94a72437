"""The oversight page: per week and model, what the small model decided and what reviewers
did about it, and whether the certified bound still holds on the audited automatic
decisions (``app.oversight``), as a table and a plot."""

from __future__ import annotations

from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.oversight import HEADERS
from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.tasks import Task, if_alive


class OversightDialog(QDialog):
    """Read on the database worker, drawn off the GUI thread, shown when ready."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.weeks: list = []
        self.setWindowTitle("Oversight")
        self.setWindowIcon(icon("history"))
        self.resize(900, 760)
        layout = QVBoxLayout(self)
        self.note = QLabel("Reading the case history…", objectName="oversightNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, len(HEADERS), objectName="oversightTable")
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        layout.addWidget(self.table, 1)
        self.plot = QLabel(objectName="oversightPlot")
        layout.addWidget(self.plot, 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.task = self.refresh()

    def refresh(self) -> Task | None:
        from app.oversight import WatchedPolicy, oversight_weeks

        store, bench = self.context.store, self.context.workbench
        if store is None:
            self.note.setText("The case history is not open yet.")
            return None
        return self.context.runner.db("read oversight", lambda: oversight_weeks(
            store, WatchedPolicy.of_bench(bench))) \
            .on_success(if_alive(self, self.show_weeks)) \
            .on_failure(if_alive(self, self.note.setText)).start()

    def show_weeks(self, weeks: list) -> None:
        self.weeks = weeks
        bench = self.context.workbench
        alpha = bench.policy.settings.alpha if bench and bench.policy is not None else None
        self.table.setRowCount(len(weeks))
        for row, w in enumerate(weeks):
            for column, value in enumerate(w.cells()):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.note.setText("Per week: the cases each model decided, the share it escalated "
                          "and of unusual text, the reviews signed and the share that "
                          "overrode it; for the model at work, its audit sample of automatic "
                          "decisions and the monitor's lower bound of their error rate" +
                          (f" (certified bound α = {alpha:.0%})." if alpha is not None else "."))
        if weeks:
            self._draw(weeks, alpha)

    def _draw(self, weeks: list, alpha) -> None:
        from app.oversight import oversight_plot

        path = self.context.data_dir / "reports" / "oversight.png"
        self.plot_task = self.context.runner.run(
            "draw oversight", lambda _ctx: oversight_plot(weeks, alpha, path)) \
            .on_success(if_alive(self, lambda p: self.plot.setPixmap(QPixmap(str(p))))) \
            .start()
