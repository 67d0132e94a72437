"""De-identification before text goes to a remote LLM (models/redaction.py, app/cli/llm_cmds.py).

A small hand-labelled set: every Safe Harbor kind in several formats, and clinical sentences
with no identifiers (drugs, doses, years, lab values) that must come back unchanged.
``pytest -s`` prints recall and precision per kind.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from models import redaction
from models.errors import DataError
from models.redaction import Entity, Redaction, redact
from models.redaction_eval import load
from models.redaction_eval import score as score_set
from tests.helpers.cli import run_main

# (text, [(kind, labelled substring), ...]); substrings are located left to right.
# Dates keep their year, so a date's label stops before it ("March 14" of "March 14, 2021").
LABELLED: list[tuple[str, list[tuple[str, str]]]] = [
    ("John Smith (MRN: 00123456) was seen by Dr. Maria Garcia on March 14, 2021.",
     [("NAME", "John Smith"), ("MRN", "00123456"), ("NAME", "Maria Garcia"),
      ("DATE", "March 14")]),
    ("Call her at (555) 123-4567, at work on 555.123.4567 or abroad on +1 555 123 4567.",
     [("PHONE", "(555) 123-4567"), ("PHONE", "555.123.4567"), ("PHONE", "+1 555 123 4567")]),
    ("Cell 555-867-5309; clinic (617) 253-1000; London office +44 20 7946 0958.",
     [("PHONE", "555-867-5309"), ("PHONE", "(617) 253-1000"), ("PHONE", "+44 20 7946 0958")]),
    ("Fax: (555) 987-6543. Send the records to fax number 617-253-1001 by Friday.",
     [("FAX", "(555) 987-6543"), ("FAX", "617-253-1001")]),
    ("Admitted 03/14/2021, discharged 14 Mar 2021, follow-up on 2021-04-02.",
     [("DATE", "03/14"), ("DATE", "14 Mar"), ("DATE", "04-02")]),
    ("Symptoms began on the 5th of January, 2020 and again on Jan. 7th 2020 and 12-25-2020.",
     [("DATE", "5th of January"), ("DATE", "Jan. 7th"), ("DATE", "12-25")]),
    ("Last seen 14.03.2021; surgery planned for September 2022; biopsy 7/4/19; CT 3/2021.",
     [("DATE", "14.03"), ("DATE", "September"), ("DATE", "7/4/19"), ("DATE", "3")]),
    ("Her email is jane.doe@example.com and the GP writes from j_smith+clinic@mail.hospital.org.",
     [("EMAIL", "jane.doe@example.com"), ("EMAIL", "j_smith+clinic@mail.hospital.org")]),
    ("Contact: r.okafor@nhs.uk (ward) or admissions@stmarys-clinic.co.uk.",
     [("EMAIL", "r.okafor@nhs.uk"), ("EMAIL", "admissions@stmarys-clinic.co.uk")]),
    ("SSN 123-45-6789 on the intake form; spouse's social security number: 536221234.",
     [("SSN", "123-45-6789"), ("SSN", "536221234")]),
    ("Her SSN is 219-09-9999 and his is 536 22 1234.",
     [("SSN", "219-09-9999"), ("SSN", "536 22 1234")]),
    ("MRN 7654321 transferred; medical record number: A-99812; MR# 4455667.",
     [("MRN", "7654321"), ("MRN", "A-99812"), ("MRN", "4455667")]),
    ("Member ID: XYZ123456789. Health plan number HP-5567-889. Medicaid ID 12345678A.",
     [("HEALTH_PLAN", "XYZ123456789"), ("HEALTH_PLAN", "HP-5567-889"),
      ("HEALTH_PLAN", "12345678A")]),
    ("Insurance policy number: PLC778899 (subscriber ID W2231-0098).",
     [("HEALTH_PLAN", "PLC778899"), ("HEALTH_PLAN", "W2231-0098")]),
    ("Account number 12345678901 is overdue; acct #: 00987-66541; billing account: BA-7788990.",
     [("ACCOUNT", "12345678901"), ("ACCOUNT", "00987-66541"), ("ACCOUNT", "BA-7788990")]),
    ("Paid with card 4111 1111 1111 1111, then 5500-0000-0000-0004 and Amex 378282246310005.",
     [("CARD", "4111 1111 1111 1111"), ("CARD", "5500-0000-0000-0004"),
      ("CARD", "378282246310005")]),
    ("Refund to 4012888888881881; the reference 4111 1111 1111 1112 is not a card.",
     [("CARD", "4012888888881881")]),
    ("Driver's license D1234567; DEA AB1234563; nursing licence no. RN-553210; NPI 1234567893.",
     [("LICENSE", "D1234567"), ("LICENSE", "AB1234563"), ("LICENSE", "RN-553210"),
      ("LICENSE", "1234567893")]),
    ("See https://www.example.org/path?a=1 and www.mit.edu, or http://portal.hospital.com/p/123.",
     [("URL", "https://www.example.org/path?a=1"), ("URL", "www.mit.edu"),
      ("URL", "http://portal.hospital.com/p/123")]),
    ("The pump reported from 192.168.10.25 and 10.0.0.1; the gateway is "
     "2001:db8:85a3::8a2e:370:7334 and fe80::1ff:fe23:4567:890a.",
     [("IP", "192.168.10.25"), ("IP", "10.0.0.1"), ("IP", "2001:db8:85a3::8a2e:370:7334"),
      ("IP", "fe80::1ff:fe23:4567:890a")]),
    ("ZIP 02139; zip code: 02139-4307; mail sorted under 02115-5901.",
     [("ZIP", "02139"), ("ZIP", "02139-4307"), ("ZIP", "02115-5901")]),
    ("She lives at 1600 Pennsylvania Ave NW, Washington, DC 20500.",
     [("ADDRESS", "1600 Pennsylvania Ave NW, Washington, DC"), ("ZIP", "20500")]),
    ("Letters go to 221B Baker Street or to P.O. Box 1234, Boston, Massachusetts 02115.",
     [("ADDRESS", "221B Baker Street"), ("ADDRESS", "P.O. Box 1234"), ("ZIP", "02115")]),
    ("Moved to 350 Fifth Avenue, Suite 3300 last year; before that 77 Massachusetts Avenue, "
     "Cambridge, MA 02139.",
     [("ADDRESS", "350 Fifth Avenue, Suite 3300"),
      ("ADDRESS", "77 Massachusetts Avenue, Cambridge, MA"), ("ZIP", "02139")]),
    ("Mr. Ahmed Khan, 64, came with his daughter Priya Patel; Mrs. Rosa Martinez called.",
     [("NAME", "Ahmed Khan"), ("NAME", "Priya Patel"), ("NAME", "Rosa Martinez")]),
    ("Patient name: Emily Chen. Referred by Dr. Wei Zhang; Jane O'Neil-Brown is the next of kin.",
     [("NAME", "Emily Chen"), ("NAME", "Wei Zhang"), ("NAME", "Jane O'Neil-Brown")]),
    ("Robert Johnson was discharged home with his wife, Sarah Johnson.",
     [("NAME", "Robert Johnson"), ("NAME", "Sarah Johnson")]),
    # Harder names: one word, mid-sentence, not Anglo-Saxon, names that are also places.
    ("Seen with her sister Anna today; plan discussed with Kowalski, the attending.",
     [("NAME", "Anna"), ("NAME", "Kowalski")]),
    ("Appointment with Dr. Nguyen; called Maria back about Jordan's results.",
     [("NAME", "Nguyen"), ("NAME", "Maria"), ("NAME", "Jordan")]),
    ("Olusegun Adeyemi and Li Wei translated for Mariana de la Cruz.",
     [("NAME", "Olusegun Adeyemi"), ("NAME", "Li Wei"), ("NAME", "Mariana de la Cruz")]),
    ("Sarah reported dizziness after her son Tomasz changed the pill box.",
     [("NAME", "Sarah"), ("NAME", "Tomasz")]),
    # Mixed notes, written after the patterns above worked (a first held-out check).
    ("Pt Margaret Thompson, DOB 02/29/1948, presented to ED on 11/3/2023 with SOB.",
     [("NAME", "Margaret Thompson"), ("DATE", "02/29"), ("DATE", "11/3")]),
    ("Discussed with daughter (Linda) at 617-555-0142; she prefers her mobile (857) 555-0199.",
     [("NAME", "Linda"), ("PHONE", "617-555-0142"), ("PHONE", "(857) 555-0199")]),
    ("Records faxed to Dr. Okonkwo's office, fax (212) 555-0187, on Dec 2nd.",
     [("NAME", "Okonkwo"), ("FAX", "(212) 555-0187"), ("DATE", "Dec 2nd")]),
    ("Hospital MRN# 55-12-9981; Medicare beneficiary ID 1EG4-TE5-MK73.",
     [("MRN", "55-12-9981"), ("HEALTH_PLAN", "1EG4-TE5-MK73")]),
    ("Address on file: 4412 W. Maple Dr., Apt 2B, Springfield, IL 62704.",
     [("ADDRESS", "4412 W. Maple Dr., Apt 2B, Springfield, IL"), ("ZIP", "62704")]),
    ("Portal message from k.nguyen84@gmail.com via https://mychart.example-health.org/msg/8841.",
     [("EMAIL", "k.nguyen84@gmail.com"), ("URL", "https://mychart.example-health.org/msg/8841")]),
    ("Copay charged to Visa ending 4242 (card 4242-4242-4242-4242); acct no. 0045-221-998.",
     [("CARD", "4242-4242-4242-4242"), ("ACCOUNT", "0045-221-998")]),
    ("Her social security no. is 412-56-7890 and the driver license number is S530-4127-8891.",
     [("SSN", "412-56-7890"), ("LICENSE", "S530-4127-8891")]),
    ("Device at 172.16.254.1 synced; last upload 2023-07-19 10:42.",
     [("IP", "172.16.254.1"), ("DATE", "07-19")]),
    ("Follow-up scheduled for April 22nd, 2024 with Nurse Patel at 1 Main Street, Suite 100.",
     [("DATE", "April 22nd"), ("NAME", "Patel"), ("ADDRESS", "1 Main Street, Suite 100")]),
    ("Insurance: Aetna, group number 778812, subscriber id AET99812734.",
     [("HEALTH_PLAN", "778812"), ("HEALTH_PLAN", "AET99812734")]),
    ("Mailing: PO Box 77, Austin, TX 78701-1234. Call +1 (512) 555 0123 before 5 pm.",
     [("ADDRESS", "PO Box 77"), ("ZIP", "78701-1234"), ("PHONE", "+1 (512) 555 0123")]),
    ("James O'Connor Jr. was admitted 3 Feb 2022 and discharged 9 Feb 2022.",
     [("NAME", "James O'Connor"), ("DATE", "3 Feb"), ("DATE", "9 Feb")]),
    # A second held-out check.
    ("Seen 6/7/2022 by Dr. Amara Singh-Lewis; next visit Oct. 14, 2022.",
     [("DATE", "6/7"), ("NAME", "Amara Singh-Lewis"), ("DATE", "Oct. 14")]),
    ("Reach the caregiver, Tom Becker, on 503.555.0117 or tom.becker@outlook.com.",
     [("NAME", "Tom Becker"), ("PHONE", "503.555.0117"), ("EMAIL", "tom.becker@outlook.com")]),
    ("He lives at 89 Elm Ct, Unit 4, Dayton, OH 45402 with his partner.",
     [("ADDRESS", "89 Elm Ct, Unit 4, Dayton, OH"), ("ZIP", "45402")]),
    ("Chart no. 3349021; health plan ID: UHC-7781-22; policy #: 55-887766.",
     [("MRN", "3349021"), ("HEALTH_PLAN", "UHC-7781-22"), ("HEALTH_PLAN", "55-887766")]),
    ("Paid by Mastercard 5105 1051 0510 5100; ref 6011 0009 9013 9425 (declined).",
     [("CARD", "5105 1051 0510 5100")]),  # the second fails the Luhn check
    ("Logged in from 203.0.113.77 and 2001:0db8:0000:0000:0000:ff00:0042:8329 at night.",
     [("IP", "203.0.113.77"), ("IP", "2001:0db8:0000:0000:0000:ff00:0042:8329")]),
    ("Visit notes at www.clinicnotes.net/visits/2022 (login required).",
     [("URL", "www.clinicnotes.net/visits/2022")]),
    ("SSN: 001-01-0001 on old form; new form shows SSN 321 54 9876.",
     [("SSN", "001-01-0001"), ("SSN", "321 54 9876")]),
    ("Bank account #: 000123456789; routing 021000021.",
     [("ACCOUNT", "000123456789"), ("ID", "021000021")]),  # a long number without a label
    ("Medical license no. G-88213 (CA); DEA number BS1234563.",
     [("LICENSE", "G-88213"), ("LICENSE", "BS1234563")]),
    ("Born 1937-08-30; first seen in clinic in Nov 2019; fax no: 555-201-3344.",
     [("DATE", "08-30"), ("DATE", "Nov"), ("FAX", "555-201-3344")]),
]

# Clinical text with no identifiers: must come back unchanged.
CLEAN = [
    "Metformin 500 mg twice daily since 2019; HbA1c 7.2%, LDL 130 mg/dL.",
    "BP 130/85, HR 72 bpm, SpO2 98% on room air, temperature 37.2 C.",
    "Started lisinopril 10 mg in 2018; switched to losartan 50 mg in 2020 because of cough.",
    "Vitamin B12 1000 mcg and vitamin D3 2000 IU daily.",
    "Platelets 250,000/uL, WBC 11.2 x10^9/L, creatinine 1.1 mg/dL, eGFR 74.",
    "The rash came back after two days and the itching was worse at night.",
    "Take 1/2 tablet of warfarin 5 mg; INR target 2.0-3.0; recheck in 2 weeks.",
    "Insulin glargine 24 units at bedtime; A1c dropped from 9.1 to 7.4 over 6 months.",
    "Reports 3 episodes of chest pain per week since 2015, relieved by nitroglycerin 0.4 mg.",
    "Amoxicillin 875 mg/clavulanate 125 mg for 10 days; follow-up in 3 months.",
    "Ibuprofen 400-600 mg every 6-8 hours as needed, max 3200 mg per day.",
    "Hemoglobin 13.5 g/dL, ferritin 45 ng/mL, TSH 2.1 mIU/L, vitamin D 32 ng/mL.",
    "Uses an albuterol inhaler 2 puffs q4h prn; FEV1 78% predicted in 2022.",
    "He has had type 2 diabetes since 2009 and hypertension since 2012.",
    "Sertraline 50 mg was increased to 100 mg; PHQ-9 score fell from 18 to 9.",
    "Order CBC, BMP and lipid panel; ECG showed sinus rhythm at 64/min.",
    "A member of the care team gave an account of the events; the policy on opioids applies.",
    "Atorvastatin 40 mg nightly; CK 180 U/L; ALT 32 U/L; no myalgia in 2021 or 2022.",
    "Weight 82.5 kg, height 175 cm, BMI 26.9; walks 10000 steps a day.",
    "Methotrexate 15 mg weekly with folic acid 1 mg daily; CRP 12 mg/L, ESR 35 mm/h.",
    "Apixaban 5 mg bid was held for 48 hours before the procedure in May.",
    "Lab accession 2023-00981 shows potassium 3.1 mmol/L; repeat on 8/15.",
    "Ibuprofen 200 mg, 2 tabs, 3 times a day for 5 days; BP 142/91; 10/10 pain in 2019.",
    "Case 12 of 20 in the group 2 diabetes cohort; policy 2020-21 on refills.",
    "Took aspirin.It helped.Pain was less in the a.m. and p.m. Given 2 tabs.In total 4.",
    "Time 12:30:45, ratio 1:1, dilution 1:100, version 1.2.3 of the app.",
    "Dose 0.5 mg/kg q.d. (i.v.), e.g. 2.5 mg; Na+ 140 mmol/L; K+ 4.1.",
    "The patient may take acetaminophen 650 mg q6h; do not exceed 3 g in 24 hours.",
]

# Capitalised drug names and imperatives, which a small NER model can take for people:
# scored for precision (printed), not required to come back unchanged.
HARD_CLEAN = [
    "Started Lisinopril and Metformin last week.",
    "She takes Xarelto 20 mg and Eliquis.",
    "Continue Lasix 40 mg, Coreg 6.25 mg and Entresto.",
    "Rituximab infusion went well; Prednisone taper continues.",
    "Allergies: Penicillin, Sulfa.",
    "Plan: Metoprolol 25 mg bid, Aspirin 81 mg.",
    "Email the results to the GP.",
    "Switched from Zoloft to Lexapro in 2020.",
]


def spans(text: str, labels: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    out, position = [], 0
    for kind, sub in labels:
        start = text.index(sub, position)
        out.append((kind, start, start + len(sub)))
        position = start + len(sub)
    return out


@pytest.fixture(scope="module")
def results() -> list[tuple[str, list, Redaction]]:
    return [(text, spans(text, labels), redact(text)) for text, labels in LABELLED]


def has_ner() -> bool:
    return "no name detector" not in redaction.detector_description()


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2)
                for i, d in enumerate(digits))
    return total % 10 == 0


def test_labels_are_in_their_texts():
    for text, labels in LABELLED:
        assert len(spans(text, labels)) == len(labels)
    assert luhn_ok("4111 1111 1111 1111") and not luhn_ok("4111 1111 1111 1112")


def test_offsets_reproduce_the_original_and_the_output_is_well_formed(results):
    for text, _, result in [*results, *((t, [], redact(t)) for t in CLEAN[:3])]:
        rebuilt, position = [], 0
        for entity in result.entities:
            assert entity.start >= position, f"overlapping entities in {result.entities}"
            assert text[entity.start:entity.end] == entity.text
            assert entity.type in redaction.KINDS
            rebuilt += [text[position:entity.start], f"[{entity.type}]"]
            position = entity.end
        assert "".join([*rebuilt, text[position:]]) == result.text


# Names after a title or a label: found with or without a name model. The other names
# depend on the NER model and are measured (not required) in the recall test.
ANCHORED_NAMES = {"Maria Garcia", "Ahmed Khan", "Rosa Martinez", "Emily Chen", "Wei Zhang",
                  "Nguyen"}


def test_every_kind_is_replaced_by_its_placeholder(results):
    for text, gold, result in results:
        for kind, start, end in gold:
            if kind == "NAME" and text[start:end] not in ANCHORED_NAMES:
                continue
            found = [e for e in result.entities if e.start < end and start < e.end]
            assert any(e.type == kind for e in found), (
                f"{kind} {text[start:end]!r} not found in {result.text!r}")
            assert text[start:end] not in result.text


@pytest.mark.parametrize("text", CLEAN)
def test_text_without_identifiers_comes_back_unchanged(text):
    result = redact(text)
    assert result.text == text, result.entities
    assert result.entities == ()


def test_examples_from_the_brief():
    assert redact("Seen on March 3, 2019.").text == "Seen on [DATE], 2019."
    assert redact("Seen since 2019.").text == "Seen since 2019."
    assert redact("MRN: 00123456").text == "MRN: [MRN]"
    assert redact("SSN 123-45-6789").text == "SSN [SSN]"
    assert redact("card 4111 1111 1111 1111").text == "card [CARD]"
    assert redact("ref 4111 1111 1111 1112").text == "ref 4111 1111 1111 1112"
    assert redact("1600 Pennsylvania Ave NW").text == "[ADDRESS]"
    assert redact("221B Baker Street").text == "[ADDRESS]"
    assert redact("Seen at 221B Baker Street.").text == "Seen at [ADDRESS]."
    assert redact("Lives at 12 Oak St. in town").text == "Lives at [ADDRESS] in town"
    assert redact("zip 02139-4307").text == "zip [ZIP]"
    assert redact("ip ::1 and 127.0.0.1").text == "ip [IP] and [IP]"


def test_to_dict_is_json():
    result = redact("Mail jane.doe@example.com on 03/14/2021.")
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["text"] == "Mail [EMAIL] on [DATE]/2021."
    assert as_json["entities"] == [{"type": "EMAIL", "start": 5, "end": 25},
                                   {"type": "DATE", "start": 29, "end": 34}]
    assert as_json["detector"].startswith("presidio ")
    assert result.entities[0] == Entity("EMAIL", 5, 25, "jane.doe@example.com")


def test_empty_and_too_long_texts_and_overlap_merging():
    assert redact("   ").entities == ()
    with pytest.raises(DataError, match="too long"):
        redact("a" * (redaction.MAX_CHARS + 1))
    merged = redaction._merge([(0, 10, "PHONE", 0.4), (5, 20, "CARD", 1.0),
                               (20, 25, "ZIP", 0.5), (30, 31, "DATE", 0.6)])
    assert merged == [(0, 20, "CARD"), (20, 25, "ZIP"), (30, 31, "DATE")]


def score(results) -> dict[str, tuple[int, int, int, int]]:
    """Per kind: (gold, gold found with the same kind, predicted, predicted that are right)."""
    table: dict[str, list[int]] = {k: [0, 0, 0, 0] for k in redaction.KINDS}
    for _, gold, result in results:
        for kind, start, end in gold:
            table[kind][0] += 1
            table[kind][1] += any(e.type == kind and e.start < end and start < e.end
                                  for e in result.entities)
        for e in result.entities:
            table[e.type][2] += 1
            table[e.type][3] += any(kind == e.type and e.start < end and start < e.end
                                    for kind, start, end in gold)
    return {k: tuple(v) for k, v in table.items() if v[0] or v[2]}


def test_recall_and_precision_on_the_labelled_set(results):
    started = time.perf_counter()
    everything = [*results, *((t, [], redact(t)) for t in CLEAN + HARD_CLEAN)]
    per_text_ms = (time.perf_counter() - started) / len(everything) * 1000
    table = score(everything)
    print(f"\n{redaction.detector_description()}")
    print(f"{'kind':<12} {'gold':>4} {'recall':>7} {'pred':>5} {'precision':>9}")
    for kind, (n_gold, found, n_pred, right) in table.items():
        recall = found / n_gold if n_gold else float("nan")
        precision = right / n_pred if n_pred else float("nan")
        print(f"{kind:<12} {n_gold:>4} {recall:>7.2f} {n_pred:>5} {precision:>9.2f}")
    others = [v for k, v in table.items() if k != "NAME"]
    recall = sum(v[1] for v in others) / sum(v[0] for v in others)
    precision = sum(v[3] for v in others) / sum(v[2] for v in others)
    print(f"all but names: recall {recall:.3f}, precision {precision:.3f}; "
          f"{len(everything)} texts, {per_text_ms:.1f} ms a text")
    assert recall >= 0.95 and precision >= 0.9
    for kind, (n_gold, found, _, _) in table.items():
        if kind != "NAME" and n_gold:
            assert found / n_gold >= 0.9, kind
    if has_ner():
        names = table["NAME"]
        print(f"names: recall {names[1] / names[0]:.2f}, precision {names[3] / names[2]:.2f}")
        # en_core_web_sm: measured 0.83 and 0.79 here (misses names it takes for places,
        # takes some capitalised brand names and imperatives for names).
        assert names[1] / names[0] >= 0.75 and names[3] / names[2] >= 0.7


def test_without_a_name_model_everything_else_still_works(monkeypatch):
    monkeypatch.setattr(redaction, "_cached", redaction._build(pipelines=()))
    assert "no name detector available" in redaction.detector_description()
    result = redact("Dr. Maria Garcia saw John Smith on 03/14/2021, MRN 7654321.")
    assert result.text == "Dr. [NAME] saw John Smith on [DATE]/2021, MRN [MRN]."
    assert "no name detector" in result.detector
    for text in CLEAN:
        assert redact(text).text == text


def test_cli_redact(capsys, casewise_home):
    out = json.loads(run_main(["redact", "Call 555-123-4567 on 14 Mar 2021.", "--json"],
                              capsys).out)
    assert out["text"] == "Call [PHONE] on [DATE] 2021."
    assert out["entities"] == [{"type": "PHONE", "start": 5, "end": 17},
                               {"type": "DATE", "start": 21, "end": 27}]
    assert set(out) == {"text", "entities", "detector"}
    plain = run_main(["redact", "Call 555-123-4567."], capsys).out
    assert plain.startswith("Call [PHONE].\n")
    assert re.search(r"PHONE\s+5-17\s+'555-123-4567'", plain)
    refused = run_main(["redact", "  "], capsys, code=2)  # a DataError, told on stderr
    assert "empty" in refused.err


# --- issue 14: the misses and false hides of the first version ---------------------------------

TUNING = Path(__file__).parent / "data" / "redaction_tuning.jsonl"

ISSUE_MISSES = [
    ("Seen with john smith today.", "john smith", "NAME"),
    ("Rosa Alvarez was admitted. Alvarez has a history of falls; alvarez lives alone.",
     "alvarez", "NAME"),
    ("Born 3-14-57 in a small town.", "3-14-57", "DATE"),
    ("She grew up in Dayton, Ohio and moved away.", "Dayton", "CITY"),
    ("Pt is a 101 yo woman with CHF.", "101", "AGE"),
    ("Pacemaker serial no. PZK-448812 was checked.", "PZK-448812", "DEVICE"),
    ("Hit by a car with plate ABC-1234 on the way home.", "ABC-1234", "VEHICLE"),
    ("See #4482913 for the earlier admission.", "#4482913", "ID"),
    ("Her e-mail is jane dot doe at gmail dot com.", "jane dot doe at gmail dot com", "EMAIL"),
]


@pytest.mark.parametrize(("text", "identifier", "kind"), ISSUE_MISSES)
def test_the_issues_misses_are_hidden(text, identifier, kind):
    if kind == "NAME" and not has_ner():
        pytest.skip("lower-case and repeated names need the name model")
    result = redact(text)
    assert identifier not in result.text, result.text
    assert any(e.type == kind and identifier in e.text for e in result.entities), result


@pytest.mark.parametrize(("text", "word"), [
    ("Email the results to the GP.", "Email"),
    ("He takes Ambien at night.", "Ambien"),
    ("He drinks Dr. Pepper every day.", "Pepper"),
])
def test_the_issues_false_hides_are_kept(text, word):
    result = redact(text)
    assert result.text == text, result.entities


@pytest.mark.parametrize(("text", "hidden", "kept"), [
    # A person whose name shares a word with a drug brand is a person, hidden whole.
    ("Seen by Dr. Allegra Whitfield today.", "Dr. [NAME] today", "Allegra"),
    ("Ambien Jones was admitted.", "[NAME] was admitted", "Jones"),
    # A physician called Pepper is not the drink.
    ("Seen by Dr. Pepper in clinic today.", "Dr. [NAME] in clinic", "Pepper"),
    # The command that opens a sentence is not part of the name after it...
    ("Email Jane about it.", "Email [NAME] about it.", "Jane"),
    # ... unless it is a name too; and "of" does not make a physician a drink.
    ("Page Smith called back.", "[NAME] called back.", "Page"),
    ("Seen under the care of Dr. Pepper since May.", "Dr. [NAME]", "Pepper"),
    ("The daughter of Mrs. Dash visited.", "Mrs. [NAME] visited", "Dash"),
])
def test_the_false_hide_rules_do_not_let_names_out(text, hidden, kept):
    if not has_ner():
        pytest.skip("needs the name model")
    result = redact(text)
    assert hidden in result.text and kept not in result.text, result.text


def test_a_detected_name_is_hidden_wherever_it_recurs():
    if not has_ner():
        pytest.skip("needs the name model")
    result = redact("Dr. Ellen Ward saw him. Ward thinks it is viral; ward staff agree.")
    assert result.text == "Dr. [NAME] saw him. [NAME] thinks it is viral; [NAME] staff agree."


def test_spelled_out_addresses_are_not_urls_or_sentences():
    assert redact("Visit notes at www.clinicnotes.net/visits/2022.").text == \
        "Visit notes at [URL]."
    assert redact("Write to bob [at] clinic [dot] org.").text == "Write to [EMAIL]."
    assert redact("In Austin, TX since May.").text == "In [CITY], TX since May."
    assert redact("However, Texas was hot.").text == "However, Texas was hot."
    assert redact("Weighs 93 kg; 100 mg daily; 90 days.").entities == ()


def test_recall_and_false_hides_on_the_tuning_set():
    items = load(TUNING)
    result = score_set([(item, [(e.start, e.end) for e in redact(item.text).entities])
                        for item in items])
    if not has_ner():
        pytest.skip("names need the name model")
    for kind in result.identifiers:
        assert result.recall(kind) >= 0.98, (kind, result.missed)
    assert len(result.false_hides) <= 0.01 * result.clean_words, result.false_hides
    assert {"NAME", "DATE", "CITY", "AGE", "DEVICE", "VEHICLE", "ID", "EMAIL"} <= \
        set(result.identifiers)


def test_the_kinds_not_handled_are_named():
    named = " ".join(redaction.NOT_HANDLED)
    for kind in ("biometric", "photograph", "geographic"):
        assert kind in named
