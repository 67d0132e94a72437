"""``export_cases``: the audit PDF of one case or a batch, written atomically and logged.

The PDF is laid out in memory, written to a scratch file beside the target, and renamed over
the target in one step, so a reader never sees half a PDF; on any failure or cancel the scratch
file is removed and an existing target is left as it was. The export is then recorded in the
case history's audit trail with the file's SHA-256; if that fails, the previous file is put
back. Safe to call from a worker thread (the GUI does); it knows nothing of Qt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, PageBreak

from app.reports.case_page import case_flowables
from app.reports.document import Checkpoint, ReportContext, build_pdf
from app.reports.fonts import fonts
from app.reports.model_card import model_card_flowables
from app.reports.styles import Styles, Writer
from app.reports.summary import summary_flowables
from models.errors import CasewiseError
from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled
from models.types import ModelCard

if TYPE_CHECKING:  # importing app.store would load alembic; only the types are needed
    from app.store.records import CaseRecord

ModelCardFor = Callable[[str], ModelCard | None]


class ExportError(CasewiseError):
    """The PDF cannot be written where asked; the message says what to do instead."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    cases: int
    pages: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The ``export --json`` contract."""
        return {"path": str(self.path), "sha256": self.sha256, "cases": self.cases,
                "pages": self.pages}


def export_cases(store: Any, case_ids: Sequence[int], out: Path | str, *,
                 model_card_for: ModelCardFor | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
                 selection: str | None = None) -> ExportResult:
    """Write the audit PDF of ``case_ids`` (a summary page first when there are several) to
    ``out`` and record the export in ``store``'s audit trail. ``model_card_for`` gives a
    model's ``ModelCard`` by id (see ``models.model_card.model_card_loader``); ``selection``
    describes how a batch was chosen, for its summary page. Raises ``ExportError``,
    ``StoreError`` or ``Cancelled``; nothing is left half-written."""
    start = time.monotonic()
    ids = list(dict.fromkeys(int(i) for i in case_ids))
    if not ids:
        raise ExportError("There are no cases to export; choose at least one case.")
    target = _target(out)
    handle, scratch = _scratch_file(target)
    try:
        with handle:
            data, pages = _render(store, ids, model_card_for, progress, cancel, selection)
            raise_if_cancelled(cancel)
            _write(handle, data)
        digest = hashlib.sha256(data).hexdigest()
        _publish(store, scratch, target, digest, ids)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return ExportResult(target, digest, len(ids), pages, time.monotonic() - start)


# -- where the file goes ---------------------------------------------------------------------------

def _target(out: Path | str) -> Path:
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give a file name, such as "
                          f"{path / 'audit.pdf'}.")
    if not path.parent.is_dir():
        raise ExportError(f"The folder {path.parent} does not exist; create it first or "
                          "choose another place for the PDF.")
    return path


def _scratch_file(target: Path) -> tuple[IO[bytes], Path]:
    """A new file beside the target (same file system, so the final rename is atomic).
    Made first, so an unwritable folder is reported before any work is done."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=".part")
    except OSError as exc:
        raise ExportError(f"Cannot write the PDF in {target.parent} ({exc.strerror or exc}). "
                          "Choose a folder you can write to.") from exc
    return os.fdopen(fd, "wb"), Path(name)


def _write(handle: IO[bytes], data: bytes) -> None:
    try:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise ExportError(f"Writing the PDF failed ({exc.strerror or exc}); nothing was "
                          "replaced. Free some space or choose another folder.") from exc


def _publish(store: Any, scratch: Path, target: Path, digest: str, ids: list[int]) -> None:
    """Rename the finished file over the target, then log it; if the log fails, put the
    previous file back so the audit trail and the disk never disagree."""
    backup = _keep_previous(target)
    try:
        try:
            os.replace(scratch, target)
        except OSError as exc:
            raise ExportError(f"Cannot replace {target} ({exc.strerror or exc}); it was left "
                              "as it was. Close it in other programs or choose another "
                              "name.") from exc
        if getattr(store, "read_only", False):
            return  # a history nobody can write: the caller says the export is not logged
        try:
            store.record_export(str(target), digest, ids)
        except BaseException:
            _restore(target, backup)
            raise
    finally:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _keep_previous(target: Path) -> Path | None:
    if not target.exists():
        return None
    backup = target.with_name(f".{target.name}.{os.getpid()}.previous")
    backup.unlink(missing_ok=True)
    try:
        os.link(target, backup)  # free and instant where hard links exist
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _restore(target: Path, backup: Path | None) -> None:
    if backup is None:
        target.unlink(missing_ok=True)
    else:
        os.replace(backup, target)


# -- what goes in it -------------------------------------------------------------------------------

def _render(store: Any, ids: list[int], model_card_for: ModelCardFor | None,
            progress: ProgressCallback | None, cancel: CancelFlag | None,
            selection: str | None) -> tuple[bytes, int]:
    chain_head = store.chain_head()  # before this export's own event: the state exported
    cases = _read_cases(store, ids, progress, cancel)
    ctx = ReportContext(Writer(fonts(), Styles.make()),
                        datetime.now(UTC).isoformat(timespec="seconds"), chain_head)
    models = list(dict.fromkeys(c.prediction.value.model_id for c in cases
                                if c.prediction and c.prediction.value.model_id))
    cards = {m: model_card_for(m) if model_card_for else None for m in models}
    tracker = ProgressTracker("laying out pages", len(cases), progress)

    def reached() -> None:
        raise_if_cancelled(cancel)
        tracker.advance()

    story = _story(cases, models, cards, ctx, reached, selection)
    if len(cases) > 1:  # a batch report: how the model and its guarantee have fared, by week
        from app.reports.monitoring import monitoring_flowables

        story = [*story, PageBreak(), *monitoring_flowables(store, cases, ctx)]
    title = (f"Casewise audit report: case #{cases[0].id}" if len(cases) == 1
             else f"Casewise audit report: {len(cases)} cases")
    return build_pdf(story, ctx, title)


def _read_cases(store: Any, ids: list[int], progress: ProgressCallback | None,
                cancel: CancelFlag | None) -> list[CaseRecord]:
    tracker = ProgressTracker("reading cases", len(ids), progress)
    cases = []
    for case_id in ids:
        raise_if_cancelled(cancel)
        cases.append(store.get_case(case_id))
        tracker.advance()
    return cases


def _story(cases: list[CaseRecord], models: list[str], cards: dict[str, ModelCard | None],
           ctx: ReportContext, reached: Callable[[], None],
           selection: str | None) -> list[Flowable]:
    story: list[Flowable] = []
    if len(cases) > 1:
        story += summary_flowables(cases, models, ctx, selection)
    for case in cases:
        if story:
            story.append(PageBreak())
        story += [*case_flowables(case, ctx), Checkpoint(reached)]
    if models:
        story.append(CondPageBreak(90 * mm))  # the cards start on a new page if little is left
    for model_id in models:
        story += model_card_flowables(model_id, cards[model_id], ctx)
    return story
