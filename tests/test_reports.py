"""The audit PDF, end to end: real cases scored by the tiny model in a real SQLite store, a
second opinion from a loopback LLM server, a signed review; the PDF read back with pypdf and
its first page rendered with poppler's pdftoppm."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.accounts.keys import short_fingerprint
from app.reports import ExportError, export_cases, model_card_loader
from app.reports.document import utc
from app.reports.fonts import CJK, EMOJI, SANS, fonts
from app.store import CaseNotFound, CaseRepository, open_store
from models.progress import CancelFlag, Cancelled, Progress
from tests.helpers.accounts import signer
from tests.helpers.data import PROJECT_ROOT
from tests.helpers.llm_server import FakeServer, serving
from tests.helpers.pdf import text_of

REVIEWER = "Ann Reviewer"
TEXTS = {
    "plain": "The medicine was awful, the rash came back and the pain never stopped.",
    "accents": "Café crème: la fièvre a baissé, naïve Zoë felt great relief and it works.",
    "cjk": "这个药物效果很好，皮疹两周后就消失了。日本語のテキスト。한국어 okay",
    "emoji": "great relief 😀 💊 but the rash 𓀀 came back <b>& worse</b>",
    "long": " ".join(["the rash came back and the doctor was unsure"] * 120),
}
LLM_ANSWER = {"explanation": "The rash came back and the pain persisted.",
              "label": "negative", "words": ["rash", "unicorn"]}


@dataclass(frozen=True)
class Stored:
    store: CaseRepository
    ids: dict[str, int]
    guarantee: str
    labels: dict[str, str]
    home: Path


@pytest.fixture(scope="module")
def loopback_llm() -> Iterator[FakeServer]:
    with serving() as httpd:
        yield httpd


def _score(store: CaseRepository, home: Path, llm: FakeServer) -> tuple[dict, dict, str]:
    """Predict, decide, explain and store every text; ask the LLM about the first."""
    from explainers.attribution import explain
    from explainers.second_opinion import evidence_of, second_opinion, word_values_of
    from models.classifier import Classifier
    from models.escalation import load_policy, predict_and_decide
    from models.llm.openai_backend import OpenAICompatibleBackend
    from models.registry import ModelRegistry

    classifier = Classifier.load(ModelRegistry(home).active_path())
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    answers = predict_and_decide(classifier, policy, list(TEXTS.values()))
    ids, labels = {}, {}
    for (key, text), (prediction, decision) in zip(TEXTS.items(), answers, strict=True):
        case_id = store.add_case(text, f"test:{key}", prediction=prediction,
                                 escalation=decision).id
        attribution = explain(classifier, text, with_checks=True)
        store.record_attribution(case_id, attribution)
        ids[key], labels[key] = case_id, prediction.label
        if key == "plain":
            llm.script = [json.dumps(LLM_ANSWER)]
            backend = OpenAICompatibleBackend(llm.url, "scripted", timeout=3.0, max_retries=0)
            opinion = second_opinion(backend, text, classifier.labels,
                                     evidence_of(prediction, decision, attribution),
                                     word_values_of(attribution, prediction.label))
            store.record_opinion(case_id, opinion)
            guarantee = decision.guarantee
    return ids, labels, guarantee


@pytest.fixture(scope="module")
def stored(trained_home, tmp_path_factory, loopback_llm) -> Iterator[Stored]:
    store = open_store(tmp_path_factory.mktemp("reports") / "cases.db", actor="tester")
    ids, labels, guarantee = _score(store, trained_home, loopback_llm)
    other = "neutral" if labels["plain"] != "neutral" else "positive"
    store.add_review(ids["plain"], signer(store, "ann", full_name=REVIEWER), "override",
                     label=other, reason="relapse after two weeks confirmed", meaning="approved")
    store.add_review(ids["accents"], signer(store, "zoe", full_name="Zoë Ødegård"), "accept")
    yield Stored(store, ids, guarantee, labels, trained_home)
    store.close()


def export(stored: Stored, keys: list[str], out: Path, **options):
    return export_cases(stored.store, [stored.ids[k] for k in keys], out,
                        model_card_for=model_card_loader(stored.home), **options)


# -- what the PDF says ----------------------------------------------------------------------------

def test_one_case_reads_back_with_everything_an_auditor_needs(stored, tmp_path):
    head = stored.store.chain_head()
    result = export(stored, ["plain"], tmp_path / "case.pdf")
    text = text_of(result.path)
    case_id = stored.ids["plain"]
    assert result.cases == 1 and result.pages == len(PdfReader(result.path).pages) >= 1
    for needle in (f"Case #{case_id}", stored.labels["plain"],
                   " ".join(stored.guarantee.split()), "AI-generated",
                   "'unicorn' is cited but does not occur", REVIEWER, "override",
                   "relapse after two weeks confirmed", "approved", "matches the case as exported",
                   f"audit chain head (event:sha256): {head[0]}:{head[1]}", "page 1 of",
                   "Faithfulness", "comprehensiveness", "Intended use", "Limitations",
                   "weights sha256", "the card file matches the model's manifest",
                   "Fine-tune (asked for; ",  # the card's training sentence
                   "Top words", "standard error", "KernelSHAP"):  # the estimator's uncertainty
        assert needle in text, needle


def test_the_signature_is_shown_as_signed_and_verified(stored, tmp_path):
    """21 CFR 11.50: printed name, date and time, meaning; and how the signature holds."""
    review = stored.store.get_case(stored.ids["plain"]).review
    sig = review.signature
    assert sig is not None and sig.verified
    text = text_of(export(stored, ["plain"], tmp_path / "signed.pdf").path)
    for needle in (f"Signed by {REVIEWER} (login id ann, approver)",
                   f"Signed at {utc(review.signed_at)}", " UTC", "Signature means approved",
                   f"signature verified (Ed25519, key {short_fingerprint(sig.key_fingerprint)})",
                   sig.key_fingerprint, f"event {sig.head_id}, sha256 {sig.head_hash}"):
        assert needle in text, needle
    assert "NOT verified" not in text


def test_a_blind_first_judgement_is_printed_beside_the_signature(stored, tmp_path):
    case_id = stored.ids["accents"]
    judgement = stored.store.record_judgement(case_id, None, "<b>too short</b> to tell", "zoe")
    text = text_of(export(stored, ["accents"], tmp_path / "judged.pdf").path)
    assert "Blind first judgements (recorded before the model's answer was shown" in text
    assert (f"cannot tell — “<b>too short</b> to tell”, by zoe at {utc(judgement.time)} "
            f"(audit event {judgement.event_id})") in text


def test_the_summary_counts_the_signatures(stored, tmp_path):
    result = export(stored, ["plain", "accents", "cjk"], tmp_path / "summary.pdf")
    first = " ".join(PdfReader(result.path).pages[0].extract_text().split())
    assert "Signatures signature verified: 2" in first
    assert f"override by {REVIEWER}; signature verified" in first


def test_a_signature_broken_behind_the_apps_back_is_shown_not_verified(tmp_path):
    db = tmp_path / "cases.db"
    with open_store(db, actor="tester") as store:
        case_id = store.add_case("The rash came back after two weeks.", "test:tamper").id
        store.add_review(case_id, signer(store, "ann", full_name=REVIEWER), "defer",
                         reason="ask the doctor")
    with closing(sqlite3.connect(db)) as raw, raw:
        raw.execute("DROP TRIGGER reviews_no_update")
        raw.execute("UPDATE reviews SET reason = 'nothing to see' WHERE case_id = ?",
                    (case_id,))
    with open_store(db, actor="tester") as store:
        result = export_cases(store, [case_id], tmp_path / "tampered.pdf")
    text = text_of(result.path)
    assert f"Signed by {REVIEWER} (login id ann, approver)" in text
    assert "signature NOT verified: the signature does not verify" in text
    assert "signature verified (" not in text and "nothing to see" in text


def test_accents_and_cjk_come_back_as_written(stored, tmp_path):
    result = export(stored, ["accents", "cjk"], tmp_path / "unicode.pdf")
    text = text_of(result.path)
    assert "Café crème: la fièvre a baissé, naïve Zoë felt" in text
    assert "Zoë Ødegård" in text
    assert "这个药物效果很好，皮疹两周后就消失了。日本語のテキスト。한국어" in text


def test_emoji_and_a_glyph_no_font_has_do_not_break_the_pdf(stored, tmp_path):
    result = export(stored, ["emoji"], tmp_path / "emoji.pdf")
    text = text_of(result.path)
    assert "😀 💊" in text  # drawn with Noto Emoji; their ToUnicode entries are valid UTF-16
    assert "[U+13000]" in text  # an Egyptian hieroglyph: no face has it, so its code point
    assert "<b>& worse</b>" in text  # user text is never read as markup


def _fonts_of(path: Path) -> dict[str, dict]:
    """Every font the pages use: base name -> its font descriptor."""
    found = {}
    for page in PdfReader(path).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            for part in [font, *(d.get_object() for d in font.get("/DescendantFonts", []))]:
                descriptor = part.get("/FontDescriptor")
                found[str(font["/BaseFont"])] = descriptor.get_object() if descriptor else {}
    return found


def test_every_font_is_embedded_truetype(stored, tmp_path):
    result = export(stored, list(TEXTS), tmp_path / "fonts.pdf")
    used = _fonts_of(result.path)
    names = " ".join(used)
    assert "DejaVuSans" in names and "WenQuanYiMicroHei" in names and "NotoEmoji" in names
    missing = [name for name, descriptor in used.items() if "/FontFile2" not in descriptor]
    assert missing == [], f"not embedded: {missing}"


def test_first_page_renders_to_a_picture_that_is_not_blank(stored, tmp_path):
    from PIL import Image

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail("pdftoppm is missing: install Debian's poppler-utils "
                    "(`apt-get install -y poppler-utils`; `make install` does it).")
    result = export(stored, ["plain"], tmp_path / "render.pdf")
    subprocess.run([pdftoppm, "-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile",
                    str(result.path), str(tmp_path / "page")], check=True, timeout=60)
    image = Image.open(tmp_path / "page.png").convert("L")
    low, high = image.getextrema()
    inked = sum(image.histogram()[:200])  # pixels darker than light grey
    assert low < high and inked > 0.01 * image.width * image.height


def test_batch_has_a_summary_page_then_every_case(stored, tmp_path):
    keys = list(TEXTS)
    result = export(stored, keys, tmp_path / "batch.pdf", selection="all test cases")
    reader = PdfReader(result.path)
    first = " ".join(reader.pages[0].extract_text().split())
    assert f"Casewise audit report: {len(keys)} cases" in first
    assert "all test cases" in first and "model label" in first and "not reviewed" in first
    text = text_of(result.path)
    assert all(f"Case #{stored.ids[k]}" in text for k in keys)
    assert f"page {len(reader.pages)} of {len(reader.pages)}" in text
    assert result.cases == len(keys) and result.pages == len(reader.pages) > len(keys)
    assert "Read whole:" in text and "overlapping windows" in text  # the long case



def test_reviews_without_a_signature_say_why_and_names_cannot_hide_escapes():
    from app.accounts.manifestation import signature_status as status_of
    from app.reports.signature import manifestation, printed_name
    from app.store.records import Review

    typed = Review(1, 1, "Eve\x1b[31m Admin", "defer", None, None, "reviewed",
                   "2026-01-02T03:04:05+00:00", "ab" * 32, None, None,
                   recorded_before_accounts=True)
    assert printed_name(typed) == "'Eve\\u001b[31m Admin'"
    assert status_of(typed) == "unsigned (recorded before accounts)"
    assert "2026-01-02 03:04:05 UTC" in manifestation(typed) and "\x1b" not in manifestation(typed)
    missing = Review(2, 1, "mallory", "defer", None, None, "reviewed",
                     "2026-01-02T03:04:05+00:00", "ab" * 32, None, None)
    assert status_of(missing) == "signature missing"

# -- how the file is written ----------------------------------------------------------------------

def test_the_export_is_logged_and_the_chain_still_verifies(stored, tmp_path):
    target = tmp_path / "logged.pdf"
    target.write_bytes(b"an older report")
    result = export(stored, ["plain", "accents"], target)
    assert target.read_bytes()[:5] == b"%PDF-"
    import hashlib

    assert hashlib.sha256(target.read_bytes()).hexdigest() == result.sha256
    event = stored.store.audit_events(kind="exported")[-1]
    assert event.payload["sha256"] == result.sha256 and event.payload["path"] == str(target)
    assert event.payload["case_ids"] == [stored.ids["plain"], stored.ids["accents"]]
    assert stored.store.verify_chain().ok


def test_a_missing_folder_is_refused_and_nothing_is_written(stored, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export(stored, ["plain"], tmp_path / "nowhere" / "case.pdf")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(ExportError, match="is a folder"):
        export(stored, ["plain"], tmp_path)


def test_an_unknown_case_fails_before_anything_is_written(stored, tmp_path):
    with pytest.raises(CaseNotFound):
        export_cases(stored.store, [stored.ids["plain"], 10_000], tmp_path / "x.pdf")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def read_only_folder(tmp_path) -> Iterator[Path]:
    """A folder nobody can create files in. Root ignores permission bits, so as root the
    folder is also made immutable (ext4's chattr +i)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if not _denied(folder):
        immutable = subprocess.run(["chattr", "+i", str(folder)],
                                   capture_output=True).returncode == 0
    if not _denied(folder):
        pytest.skip("cannot make a read-only folder on this file system as this user")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def _denied(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    return False


def test_a_read_only_folder_is_refused_with_what_to_do(stored, read_only_folder):
    with pytest.raises(ExportError, match="Choose a folder you can write to"):
        export(stored, ["plain"], read_only_folder / "case.pdf")
    assert list(read_only_folder.iterdir()) == []


@pytest.mark.parametrize("stage", ["reading cases", "laying out pages"])
def test_cancel_mid_batch_leaves_no_file_and_the_old_one_intact(stored, tmp_path, stage):
    target = tmp_path / "batch.pdf"
    target.write_bytes(b"the previous report")
    exports_before = len(stored.store.audit_events(kind="exported"))
    cancel = CancelFlag()
    seen: list[Progress] = []

    def progress(report: Progress) -> None:
        seen.append(report)
        if report.stage == stage and report.done >= 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        export(stored, list(TEXTS), target, progress=progress, cancel=cancel)
    assert any(p.stage == stage for p in seen)
    assert target.read_bytes() == b"the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.pdf"]
    assert len(stored.store.audit_events(kind="exported")) == exports_before


# -- fonts and model cards ------------------------------------------------------------------------

def test_each_character_goes_to_a_face_that_has_it():
    faces = [face for face, _ in fonts().runs("é日한😀💊𓀀", SANS)]
    assert faces == [SANS, CJK, EMOJI, None]  # neighbours in one face make one run
    assert fonts().markup("a <b> & 𓀀").startswith("a &lt;b&gt; &amp; ")
    assert "[U+13000]" in fonts().markup("𓀀")


def test_the_reports_load_neither_torch_nor_shap():
    """An export from the terminal must not pay seconds for the model stack it never uses."""
    import sys

    code = ("import sys, app.reports, app.reports.case_page, app.reports.chart; "
            "print('torch' in sys.modules, 'shap' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PROJECT_ROOT).stdout.split()
    assert out == ["False", "False"]


def test_model_cards_are_found_checked_and_never_read_outside_the_models(home):
    from models.registry import ModelRegistry

    model_id = ModelRegistry(home).active_id()
    card_for = model_card_loader(home)
    card = card_for(model_id)
    assert card.model_id == model_id and "matches" in card.integrity
    assert card_for("no-such-model") is None and card_for("../models") is None
    card_file = home / "models" / model_id / "model_card.json"
    card_file.write_text(card_file.read_text(encoding="utf-8").replace("synthetic", "edited"),
                         encoding="utf-8")
    assert "DIFFERS" in model_card_loader(home)(model_id).integrity
