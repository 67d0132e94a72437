"""Rules that run around Presidio in ``models.redaction`` (issue 14).

Pattern recognisers for Safe Harbor kinds the first version did not handle (numeric dates
with two-digit years, a city before a US state, ages over 89, device serial numbers, vehicle
plates and VINs, unlabelled record numbers, e-mail addresses spelled out as "x dot y at z dot
com"), and rules over the detected spans:

- false names are dropped: a one-word "name" opening a sentence that is a common word
  ("Email the results"), brand drug names ("Ambien"), and brands after a title
  ("Dr. Pepper");
- every word of a detected name is then hidden wherever it recurs, in any case ("John Smith
  ... Smith ... smith");
- a lower-case name ("john smith") is looked for where a first name from ``FIRST_NAMES``
  appears in lower case: spaCy reads a copy of the text with that word and the next one
  capitalised, and its PERSON entities there count. Lower-case names without a listed first
  name are missed.
"""

from __future__ import annotations

import regex

# --- word lists ------------------------------------------------------------------------------

def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


# Drug names (mostly brands) that en_core_web_sm takes for people or that title patterns catch.
DRUG_BRANDS = _words("""
ambien xanax valium ativan klonopin restoril lexapro zoloft prozac paxil celexa wellbutrin
effexor cymbalta pristiq trazodone lipitor crestor zocor pravachol norvasc lasix bumex coreg
toprol lopressor tenormin synthroid levoxyl xarelto eliquis pradaxa coumadin jantoven plavix
brilinta entresto januvia janumet jardiance farxiga invokana ozempic wegovy mounjaro trulicity
victoza lantus basaglar humalog novolog levemir tresiba glucophage neurontin lyrica ultram
percocet vicodin norco oxycontin dilaudid tylenol advil motrin aleve excedrin benadryl zyrtec
claritin allegra flonase singulair advair symbicort breo spiriva ventolin proair xopenex
nexium prilosec protonix zantac pepcid carafate flomax proscar avodart viagra cialis seroquel
abilify risperdal zyprexa geodon latuda haldol depakote lamictal keppra tegretol trileptal
dilantin topamax adderall ritalin concerta vyvanse strattera suboxone narcan keflex augmentin
cipro levaquin bactrim zithromax diflucan valtrex tamiflu paxlovid humira enbrel remicade
stelara keytruda opdivo herceptin avastin medrol imitrex aricept namenda sinemet requip
mirapex fosamax boniva prolia premarin estrace provera aldactone zestril prinivil diovan
cozaar benicar cardizem lanoxin imdur nitrostat zofran phenergan reglan colace miralax
dulcolax senokot lovenox heparin epipen biktarvy genvoya truvada descovy aspirin sulfa
penicillin prednisone insulin coumadin
""")

# Brands written after a title, which are not people.
TITLED_BRANDS = ("dr pepper", "dr. pepper", "dr scholl", "dr. scholl", "dr martens",
                 "dr. martens", "mr clean", "mr. clean", "mr coffee", "mr. coffee", "mrs dash",
                 "mrs. dash", "mr pibb", "mr. pibb")

# Words said of a medicine ("Started Lexapro"), which a small NER model joins to its name.
MEDICATION_VERBS = _words("""
started starting stopped stopping took taking takes take continue continued continuing
restarted resumed switched tried trying prescribed increased decreased held on off and or
start starts stop stops hold holds resume resumes restart increase decrease taper titrate
give given
""")

# Words shortly before a titled brand ("drinks two cans of Dr. Pepper") that make it the
# product, not a person ("under the care of Dr. Pepper" is a physician).
BRAND_CONTEXT = _words("""
drink drinks drank drinking diet cans bottle bottles glass glasses cup cups soda sip sips
liter litre liters litres buy buys bought wear wears wearing
""")
BRAND_CONTEXT_WORDS = 3  # how far back such a word may be

# Common words that open a sentence and that a small NER model may take for a name.
COMMON_OPENERS = _words("""
email e-mail call phone text message fax page send mail continue start stop hold resume
follow check review refer discuss see note plan advise please return repeat recheck schedule
consider monitor encourage counsel educate reassure ask tell give take increase decrease
titrate taper order obtain draw print sign scan upload update notify contact
""")

# Openers that are names too ("Page Smith"): never trimmed off a name.
NAME_LIKE_OPENERS = frozenset({"page", "hope", "grant", "will", "mark", "sign"})

# Words never propagated as parts of a name (particles, titles, suffixes).
NAME_PARTICLES = _words("""
de la le da di del della van von der den du dos das bin ibn al el st jr sr ii iii iv md do
rn np pa phd dr mr mrs ms mx miss prof nurse sister
""")

# Common US first names, for lower-case names. Names that are also common words (will,
# may, mark, bill, grace, hope, june, april, rose, ...) are left out on purpose.
FIRST_NAMES = _words("""
james john robert michael william david richard joseph thomas charles christopher daniel
matthew anthony donald steven paul andrew joshua kenneth kevin brian george timothy ronald
edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott
brandon benjamin samuel gregory alexander patrick raymond dennis jerry tyler aaron jose
adam nathan henry douglas zachary peter kyle ethan walter noah jeremy christian keith roger
terry gerald harold sean austin carl arthur lawrence dylan jesse jordan bryan billy joe
bruce gabriel logan albert willie alan juan wayne elijah randy roy vincent ralph eugene
russell bobby mason philip louis mary patricia jennifer linda elizabeth barbara susan
jessica sarah karen lisa nancy betty margaret sandra ashley kimberly emily donna michelle
carol amanda dorothy melissa deborah stephanie rebecca sharon laura cynthia kathleen amy
angela shirley anna brenda pamela emma nicole helen samantha katherine christine debra
rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia
victoria kelly lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline
martha gloria teresa ann sara madison frances kathryn janice jean abigail alice judy sophia
julia denise amber doris marilyn danielle beverly isabella theresa diana natalie brittany
charlotte marie kayla alexis lori jane ahmed mohammed muhammad ali fatima priya wei li
carlos luis miguel jorge ana rosa lucia elena sofia mateo diego omar yusuf aisha amara
""")

_STOP: frozenset[str] | None = None


def stop_words() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        from spacy.lang.en.stop_words import STOP_WORDS

        _STOP = frozenset(STOP_WORDS)
    return _STOP


# --- pattern recognisers (Python's `regex`; added to Presidio by models.redaction) ------------

_STATE_NAMES = (
    r"(?:Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida"
    r"|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland"
    r"|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada"
    r"|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio"
    r"|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas"
    r"|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|D\.C\.)")
_STATE_CODES = (r"(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]"
                r"|O[HKR]|PA|PR|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])")
_CITY_WORD = r"(?:[A-Z][a-z'’.-]+|[A-Z]\.)"
_ANCHORED = 0.95
_SERIAL = r"(?=[A-Za-z0-9/-]*\d)[A-Za-z0-9][A-Za-z0-9/-]{3,28}[A-Za-z0-9]\b"
_DOT = r"(?:[ \t]*[\[(][ \t]*(?i:dot)[ \t]*[\])][ \t]*|[ \t]+(?i:dot)[ \t]+|\.)"
_AT = r"(?:[ \t]*[\[(][ \t]*(?i:at)[ \t]*[\])][ \t]*|[ \t]+(?i:at)[ \t]+|[ \t]*@[ \t]*)"
_DOT_SPELLED = r"(?:[ \t]*[\[(][ \t]*(?i:dot)[ \t]*[\])][ \t]*|[ \t]+(?i:dot)[ \t]+)"
_AT_BRACKETED = r"(?:[ \t]*[\[(][ \t]*(?i:at)[ \t]*[\])][ \t]*|[ \t]+@[ \t]*|[ \t]*@[ \t]+)"
_LOCAL = r"(?<![\w.])[A-Za-z0-9_+-]+(?:" + _DOT + r"[A-Za-z0-9_+-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:" + _DOT + r"[A-Za-z0-9-]+)*?"
_TLD = r"(?i:com|org|net|edu|gov|mil|int|io|co|us|uk|ca|de|fr|au|info|biz|me)"
_MONTH_NUM = r"(?:0?[1-9]|1[0-2])"
_DAY_NUM = r"(?:0?[1-9]|[12]\d|3[01])"

EXTRA_PATTERNS: dict[str, list[tuple[str, str, float]]] = {
    "DATE": [
        ("numeric date, 2-digit year", r"(?<![\w./-])(?:" + _MONTH_NUM + r"([-/.])" + _DAY_NUM
         + r"|" + _DAY_NUM + r"([-/.])" + _MONTH_NUM + r")(?:\1|\2)\d\d(?![\w/-]|\.\d)", 0.7),
    ],
    "CITY": [
        ("city before a state", r"(?<![\w'’.-])(?<!\d[ \t]+)" + _CITY_WORD
         + r"(?:[ \t]+" + _CITY_WORD + r"){0,2}(?=,[ \t]*(?:" + _STATE_NAMES + r"|"
         + _STATE_CODES + r")\b)", 0.8),
    ],
    "AGE": [
        ("age over 89 before a unit", r"(?<![\w.])(?:9\d|1[0-4]\d)(?=[ \t-]*(?i:yo\b|y/o|y\.o\."
         r"|yrs?\b|years?[ \t-]+old|years?[ \t]+of[ \t]+age|-?year-old|yr-old))", 0.85),
        ("age over 89 after a label", r"(?<=(?i:\bage[ds]?:?|\baged[ \t]+about)[ \t]+)"
         r"(?:9\d|1[0-4]\d)\b(?!\.\d)", 0.85),
    ],
    "DEVICE": [
        ("labelled serial number", r"(?<=(?i:\bserial(?:[ \t]+(?:number|num|no\.?|#))?"
         r"|\bS/N|\bSN|\bdevice[ \t]+(?:id|serial|number)|\bUDI|\bIMEI|\bmodel/serial)"
         r"[ \t]*(?:[:#=]|(?i:is))?[ \t]*)" + _SERIAL, _ANCHORED),
    ],
    "VEHICLE": [
        ("labelled plate", r"(?<=(?i:\b(?:licen[cs]e[ \t]+)?plate(?:[ \t]+(?:number|no\.?|#))?"
         r"|\bregistration[ \t]+plate|\btag[ \t]+(?:number|no\.?|#))[ \t]*"
         r"(?:[:#]|is|was|reads|read|of)?[ \t]*)"
         r"(?=[A-Z0-9 -]*\d)[A-Z0-9]{1,4}(?:[ -]?[A-Z0-9]{2,5})\b", _ANCHORED),
        ("VIN", r"\b(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}\b", 0.8),
    ],
    "ID": [
        ("number after #", r"(?<![\w&])#[ \t]?\d{4,}(?:-\d+)*\b", 0.6),
        ("long digit run", r"(?<![\w.,/-])\d{7,}(?!\w|[.,/-]\d)", 0.5),
    ],
    "EMAIL": [
        # the "at" in brackets, or the last dot spelled out: "notes at www.x.net" is not one
        ("spelled-out address", _LOCAL + _AT_BRACKETED + _DOMAIN + _DOT + _TLD + r"\b", 0.99),
        ("spelled-out dot", _LOCAL + _AT + _DOMAIN + _DOT_SPELLED + _TLD + r"\b", 0.99),
    ],
}


# --- span rules ------------------------------------------------------------------------------

Span = tuple[int, int, str, float]
_SENTENCE_START = regex.compile(r"(?:^|[.!?:;\n]\s*|^\s*[-*•]\s*)$")


def _is_drug(words: list[str]) -> bool:
    """The span is a drug name and nothing that could be a person's name: "Started Lexapro"
    is tagged as one person, but "Dr. Allegra Whitfield" and "Ambien Jones" are people whose
    name shares a word with a brand, and are hidden whole."""
    if not any(w.lower() in DRUG_BRANDS for w in words):
        return False
    # Only the words said of a medicine may stand beside it: "Allegra May" is a person.
    return all(w.lower() in DRUG_BRANDS or w.lower() in MEDICATION_VERBS for w in words)


def _titled_brand(text: str, start: int, end: int) -> bool:
    """"Dr. Pepper" the drink ("drinks Dr. Pepper", "a can of Dr Pepper"), not a physician
    called Pepper ("seen by Dr. Pepper"): the brand counts only after a word of drinking,
    buying or measure."""
    before = text[max(0, start - 5):end].lower()
    if not any(before.endswith(brand) for brand in TITLED_BRANDS):
        return False
    head = regex.sub(r"(?i)\b(dr|mr|mrs)\.?\s*$", "", text[:start]).rstrip()
    previous = regex.findall(r"[A-Za-z]+", head[-60:])[-BRAND_CONTEXT_WORDS:]
    return any(word.lower() in BRAND_CONTEXT for word in previous)


def false_name(text: str, start: int, end: int) -> bool:
    """A NAME span that is a drug brand, a brand after a title or a sentence-opening word."""
    found = text[start:end]
    words = regex.findall(r"[A-Za-z][A-Za-z'’-]*", found)
    if _is_drug(words) or _titled_brand(text, start, end):
        return True
    if len(words) == 1 and words[0].lower() in COMMON_OPENERS:
        return bool(_SENTENCE_START.search(text[:start]))
    return False


def trim_opener(text: str, span: Span) -> Span:
    """A NAME span without the sentence-opening command the NER model joined to it
    ("Email Jane about it" -> "Jane"); any other span unchanged."""
    start, end, kind, score = span
    first = regex.match(r"([A-Za-z-]+)\s+(?=\S)", text[start:end])
    # A word that is also a name ("Page Smith called") stays part of the name.
    word = first.group(1).lower() if first else ""
    if (kind != "NAME" or first is None or word not in COMMON_OPENERS
            or word in FIRST_NAMES or word in NAME_LIKE_OPENERS
            or not _SENTENCE_START.search(text[:start])):
        return span
    return (start + first.end(), end, kind, score)


def trim_city(text: str, span: Span) -> Span | None:
    """A city span without leading common words ("In Dayton" -> "Dayton"), or None."""
    start, end, kind, score = span
    for word in regex.finditer(r"\S+", text[start:end]):
        if word.group().lower().strip(".") not in stop_words() | COMMON_OPENERS:
            return (start + word.start(), end, kind, score)
    return None


def _name_words(found: str) -> set[str]:
    out = set()
    for word in regex.findall(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]", found):
        word = regex.sub(r"['’]s$", "", word)
        lowered = word.lower()
        if (len(word) < 2 or lowered in NAME_PARTICLES or lowered in stop_words()
                or lowered in DRUG_BRANDS or lowered in COMMON_OPENERS):
            continue
        out.add(word)
    return out


def propagate_names(text: str, spans: list[Span]) -> list[Span]:
    """Every word of a detected name, wherever it recurs in the text, in any case."""
    words = set()
    for start, end, kind, _ in spans:
        if kind == "NAME":
            words |= _name_words(text[start:end])
    if not words:
        return []
    pattern = regex.compile(r"(?<![\w'’-])(?i:" + "|".join(
        regex.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?![\w-])")
    return [(m.start(), m.end(), "NAME", 0.4) for m in pattern.finditer(text)]


_LOWER_FIRST = regex.compile(r"(?<![\w'’-])(" + "|".join(sorted(FIRST_NAMES)) +
                             r")(?:[ \t]+([a-z][a-z'’-]+))?(?![\w-])")


# Words after which a lower-case pair of words is read as a possible name.
_NAME_CUE = regex.compile(
    r"(?<=(?i:\b(?:spoke|talked|speak|talk)[ \t]+(?:with|to)|\bcalled|\bseen[ \t]+by"
    r"|\b(?:daughter|son|wife|husband|mother|father|sister|brother|partner|friend|neighbou?r"
    r"|caregiver|carer|guardian|niece|nephew|aunt|uncle|cousin|grandson|granddaughter)"
    r",?)[ \t]+)([a-z][a-z'’-]+)[ \t]+([a-z][a-z'’-]+)(?![\w-])")


def lower_case_names(text: str, nlp) -> list[Span]:
    """Lower-case names: after a listed first name ("john smith") or a cue ("son, tim lee");
    spaCy reads a copy with those words capitalised and its PERSON entities count."""
    candidates = list(_LOWER_FIRST.finditer(text)) + list(_NAME_CUE.finditer(text))
    if not candidates or nlp is None:
        return []
    copy = list(text)
    for match in candidates:
        for group in (1, 2):
            if match.group(group) and match.group(group).lower() not in stop_words():
                copy[match.start(group)] = copy[match.start(group)].upper()
    doc = nlp("".join(copy))
    out = []
    for ent in doc.ents:
        if ent.label_ != "PERSON":
            continue
        for match in candidates:
            if ent.start_char <= match.start(1) < ent.end_char:
                out.append((ent.start_char, ent.end_char, "NAME", 0.4))
    return out
