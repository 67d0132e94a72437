"""Train from the reviewed cases in the window: the same flow as ``train --from-history``
(``app.learning``), with its progress, its comparison shown, and the choice to promote (when
the rule says the new model is not worse) or to put it to work anyway with a stated reason —
both an admin's, both in the audit trail."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QInputDialog, QPushButton, QWidget

from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.models_dialog import TrainingDialog, log_new_model
from app.ui.tasks import SerialisedStore, Task, if_alive


class LearningDialog(TrainingDialog):
    """The progress of a train-from-history run, then its comparison and the choice."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__("Training from the reviewed cases", parent)
        self.context = context
        self.challenge = None
        self.comparison_event = None
        self.promote_button = QPushButton(icon("accept"), "Put it to work",
                                          objectName="promoteChallenger")
        self.promote_button.clicked.connect(self.ask_to_promote)
        self.promote_button.hide()
        self.button_row.insertWidget(1, self.promote_button)

    def show_challenge(self, challenge, event) -> None:
        self.challenge, self.comparison_event = challenge, event
        log_new_model(self.context, challenge.challenger)  # its first policy, as `train` files
        verdict = challenge.comparison
        new = (f" Reviewers used labels the active model lacks: "
               f"{', '.join(challenge.new_labels)}." if challenge.new_labels else "")
        self.finish(f"Model {challenge.challenger.id} is trained and kept, not active. "
                    f"{verdict.summary()}{new}")
        self.promote_button.setText("Put it to work" if verdict.promote
                                    else "Put it to work anyway…")
        self.promote_button.show()

    def ask_to_promote(self) -> Task | None:
        """The rule's promotion, or a forced one with a reason (asked here)."""
        reason = None
        if not self.challenge.comparison.promote:
            reason, given = QInputDialog.getText(
                self, "Put it to work anyway",
                "The comparison does not show the new model is as good. Why put it to work? "
                "(kept in the audit trail)")
            if not given or not reason.strip():
                return None
        return self.promote(reason)

    def promote(self, reason: str | None = None) -> Task:
        """Activate the challenger (an admin's); a forced promotion records ``reason``."""
        self.promote_button.setEnabled(False)
        return self.context.if_admin("put a model trained from the history to work",
                                     lambda: self._activate(reason),
                                     if_alive(self, self._refused), owner=self)

    def _refused(self, message: str) -> None:
        self.stage.setText(message)
        self.promote_button.setEnabled(True)

    def _activate(self, reason: str | None) -> Task:
        from app.casework import activate_model, model_identity, model_registry

        store = SerialisedStore(self.context.store, self.context.runner)
        data_dir, record = self.context.data_dir, self.challenge.challenger
        cited = self.comparison_event.id if self.comparison_event is not None else None

        def work(_ctx):
            known = store.recorded_weights(record.id)
            if reason is not None:  # on the record before the model is put to work
                store.record_forced_promotion(record.id, reason, cited)
            path = activate_model(data_dir, record.id, [known] if known else [])
            store.record_model_activated(record.id, *model_identity(path))
            return model_registry(data_dir).record(record.id)

        return self.context.runner.run("promote model", work) \
            .on_success(self._activated).on_failure(if_alive(self, self._refused)).start()

    def _activated(self, record) -> None:
        self.context.load_workbench(record.id)
        self.context.message.emit("info", f"Model {record.id} is now the active model.")
        if shiboken6.isValid(self):
            self.stage.setText(f"Model {record.id} is now the active model.")
            self.promote_button.hide()


def start_learning(context: AppContext, parent: QWidget | None = None, *, options=None,
                   config=None, base_dir=None) -> LearningDialog:
    """Train a challenger from the reviewed cases in the background, compare it with the
    active model and file the comparison; the dialog then offers the promotion."""
    from app.casework import model_registry
    from app.learning import LearningOptions, prepare, train_challenger

    options = options or LearningOptions()
    dialog = LearningDialog(context, parent)
    bench, data_dir = context.workbench, context.data_dir
    store = SerialisedStore(context.store, context.runner) if context.store else None

    def work(ctx):
        if store is None or bench is None:
            from models.errors import CasewiseError

            raise CasewiseError("Open a case history and load a model first.")
        split, original = prepare(store, bench.classifier, options)
        challenge = train_challenger(model_registry(data_dir), bench.classifier, split,
                                     original, config, base_dir, ctx.progress, ctx.cancel)
        event = store.record_comparison(challenge.champion_id, challenge.challenger.id,
                                        challenge.comparison.to_dict(), split.record())
        return challenge, event

    dialog.task = context.runner.run("train from history", work)
    dialog.task.on_progress(if_alive(dialog, dialog.show_progress)) \
        .on_success(if_alive(dialog, lambda result: dialog.show_challenge(*result))) \
        .on_cancelled(if_alive(dialog, lambda: dialog.finish("Cancelled: nothing was saved."))) \
        .on_failure(if_alive(dialog, lambda message: dialog.finish(
            f"Training from the history failed: {message}")))
    dialog.show()
    # Started on the next turn of the event loop, so a caller can still connect to the task.
    QTimer.singleShot(0, dialog.task.start)
    return dialog
