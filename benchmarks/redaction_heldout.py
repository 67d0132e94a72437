"""Writes benchmarks/data/redaction_heldout.jsonl: the held-out set for bench_redaction.py.

Made by a different method from the tuning set (tests/data/redaction_tuning.jsonl, written
by hand while the rules were written): sentence templates with slots, filled at random
(fixed seed) from value lists written after the rules and without reading them; labels come
from construction. Not to be tuned on. Also writes set 2b (redaction_heldout_2.jsonl) and
set 3 (redaction_heldout_3.jsonl: PHONE, FAX, SSN, MRN, HEALTH_PLAN, ACCOUNT, CARD, LICENSE,
URL, IP, ZIP, ADDRESS, and clean text full of numbers), each with its own templates, lists
and seed.

    .venv/bin/python benchmarks/redaction_heldout.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "redaction_heldout.jsonl"
OUT_2 = Path(__file__).resolve().parent / "data" / "redaction_heldout_2.jsonl"
OUT_3 = Path(__file__).resolve().parent / "data" / "redaction_heldout_3.jsonl"
SEED = 20261204
SEED_2 = 4821
SEED_3 = 730517

GIVEN = ["Harriet", "Desmond", "Ingrid", "Rafael", "Yolanda", "Cornelius", "Beatrix", "Tobias",
         "Marisol", "Everett", "Nadia", "Leopold", "Fiona", "Gustavo", "Imogen", "Kwame",
         "Sunita", "Bartholomew", "Ximena", "Oskar", "Thandiwe", "Rupert", "Esperanza",
         "Malcolm", "Svetlana", "Dominic", "Chiamaka", "Lars", "Bernadette", "Hiroshi",
         "Ruth", "Walter", "Dolores", "Frank", "Agnes", "Howard", "Mildred", "Stanley"]
FAMILY = ["Abernathy", "Okonjo", "Lindqvist", "Castellanos", "Whitfield", "Nakamura",
          "Przybylski", "Haddad", "Fairbanks", "Mbeki", "Delacroix", "Thornbury", "Varga",
          "Oyelaran", "McAllister", "Quintero", "Stavros", "Bergström", "Achebe", "Kowalczyk",
          "Pemberton", "Salazar", "Ivanova", "Holloway", "Rasmussen", "Gallagher", "Tanaka",
          "Brennan", "Moreau", "Schofield"]
CITIES = [("Albuquerque", "New Mexico"), ("Kalamazoo", "MI"), ("Fort Wayne", "Indiana"),
          ("Chattanooga", "TN"), ("Bakersfield", "California"), ("Duluth", "Minnesota"),
          ("Spokane", "WA"), ("Savannah", "Georgia"), ("Cedar Rapids", "Iowa"),
          ("Billings", "Montana"), ("Lubbock", "TX"), ("Burlington", "Vermont"),
          ("Asheville", "NC"), ("Scranton", "PA"), ("Eugene", "Oregon"), ("Wichita", "KS"),
          ("Baton Rouge", "Louisiana"), ("Provo", "UT"), ("Newark", "NJ"),
          ("St. Petersburg", "FL"), ("Green Bay", "Wisconsin"), ("Anchorage", "AK")]
DRUGS = ["Ambien", "Norvasc", "Lipitor", "Synthroid", "Xanax", "Zoloft", "Tylenol", "Keppra",
         "Seroquel", "Plavix", "Flomax", "Cymbalta", "Ozempic", "Humira", "Lasix", "Nexium"]
PLATE_WORDS = ["plate", "license plate", "plate number", "licence plate", "plate no."]
SERIAL_WORDS = ["serial no.", "serial number", "S/N", "SN", "serial #", "device ID"]
DEVICES = ["pacemaker", "insulin pump", "CPAP machine", "hearing aid", "glucose monitor",
           "wheelchair", "ICD"]
EMAIL_DOMAINS = ["gmail", "yahoo", "hotmail", "aol", "comcast", "protonmail", "icloud"]
TLDS = ["com", "net", "org"]
CLEAN = [
    "Tolerating a regular diet; bowel sounds present in all four quadrants.",
    "Lungs clear to auscultation bilaterally, no wheeze or crackles.",
    "Continue {drug} at the same dose and recheck in 3 weeks.",
    "Stop {drug} if the dizziness returns.",
    "Email the nurse line if the fever goes above 38.5 C.",
    "Call the office before taking another dose of {drug}.",
    "Follow up with cardiology in 6 to 8 weeks; repeat echo then.",
    "He drinks two cans of Dr. Pepper a day and no alcohol.",
    "Discussed risks and benefits; she agrees with the plan.",
    "Potassium 4.2, sodium 138, glucose 112; no change to {drug}.",
    "Walked 200 feet with a walker and needed one rest.",
    "Pain 4/10 today, down from 7/10 yesterday.",
]


def _plate(r: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    shape = r.choice(["LLL-DDDD", "DLLLDDD", "LLL DDDD", "LL-DDDDD", "DDD-LLL"])
    return "".join(r.choice(letters) if c == "L" else str(r.randint(0, 9)) if c == "D" else c
                   for c in shape)


def _serial(r: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    shape = r.choice(["LLDDDDDD", "DDDD-LLDD", "LDDDDDDDDL", "LLL-DDDDD-D", "DDDDDDDDDD"])
    return "".join(r.choice(letters) if c == "L" else str(r.randint(0, 9)) if c == "D" else c
                   for c in shape)


def _date(r: random.Random) -> str:
    month, day, year = r.randint(1, 12), r.randint(1, 28), r.randint(0, 99)
    sep = r.choice(["-", "/", "."])
    return f"{month}{sep}{day}{sep}{year:02d}" if r.random() < 0.5 else \
        f"{month:02d}{sep}{day:02d}{sep}{year:02d}"


def _age(r: random.Random) -> tuple[str, str]:
    age = str(r.randint(90, 109))
    form = r.choice(["{a} yo", "{a} y/o", "{a}-year-old", "{a} year old", "aged {a}",
                     "{a} years old", "age {a}", "{a} yrs old"])
    return form.format(a=age), age


def _email(r: random.Random, given: str, family: str) -> str:
    at = r.choice([" at ", " [at] ", " (at) "])
    dot = r.choice([" dot ", " [dot] ", " (dot) "])
    return f"{given.lower()}{dot}{family.lower()}{at}{r.choice(EMAIL_DOMAINS)}{dot}" \
           f"{r.choice(TLDS)}"


def _record(r: random.Random) -> str:
    return r.choice(["#", "# ", ""]) + str(r.randint(1_000_000, 99_999_999)) \
        if r.random() < 0.7 else "#" + str(r.randint(10_000, 999_999))


def make(r: random.Random) -> list[dict]:
    rows = []
    for _ in range(100):
        given, family = r.choice(GIVEN), r.choice(FAMILY)
        city, state = r.choice(CITIES)
        template = r.randrange(8)
        if template == 0:
            age_text, age = _age(r)
            text = f"{given} {family} is a {age_text} patient from {city}, {state}."
            labels = [["NAME", f"{given} {family}"], ["AGE", age], ["CITY", city]]
            if age_text.startswith(("aged", "age")):
                text = f"{given} {family}, {age_text}, came from {city}, {state}."
        elif template == 1:
            text = (f"Spoke with {given.lower()} {family.lower()} by phone; "
                    f"{family} will bring the {r.choice(DRUGS)} list.")
            labels = [["NAME", f"{given.lower()} {family.lower()}"], ["NAME", family]]
        elif template == 2:
            date = _date(r)
            device = r.choice(DEVICES)
            serial = _serial(r)
            text = f"The {device} ({r.choice(SERIAL_WORDS)} {serial}) was implanted on {date}."
            labels = [["DEVICE", serial], ["DATE", date]]
        elif template == 3:
            plate = _plate(r)
            text = (f"Brought in after a collision; the other car's {r.choice(PLATE_WORDS)} "
                    f"was {plate}. Mr. {family} was the driver.")
            labels = [["VEHICLE", plate], ["NAME", family]]
        elif template == 4:
            email = _email(r, given, family)
            text = f"Her son asks that results go to {email} rather than by post."
            labels = [["EMAIL", email]]
        elif template == 5:
            record = _record(r)
            text = f"Old notes are filed under {record} in the archive; see {_date_label(r)}."
            labels = [["ID", record]]
        elif template == 6:
            date = _date(r)
            text = (f"Dr. {given} {family} reviewed the films on {date}. "
                    f"{family} wants a repeat in {city}, {state}.")
            labels = [["NAME", f"{given} {family}"], ["DATE", date], ["NAME", family],
                      ["CITY", city]]
        else:
            age_text, age = _age(r)
            text = (f"{given} is {age_text} and still lives alone; {given.lower()} "
                    f"takes {r.choice(DRUGS)} at night.")
            labels = [["NAME", given], ["AGE", age], ["NAME", given.lower()]]
        rows.append({"text": text, "labels": labels})
    for _ in range(40):
        rows.append({"text": r.choice(CLEAN).format(drug=r.choice(DRUGS)), "labels": []})
    r.shuffle(rows)
    return rows


def _date_label(r: random.Random) -> str:
    return r.choice(["the 2019 summary", "page 3", "the index card", "box 12"])


# Set 2b: written after the first held-out run had been looked at (and two rules changed),
# with new templates and new value lists, so that the changed rules meet unseen text.
GIVEN_2 = ["Penelope", "Augustin", "Wilhelmina", "Emeka", "Rosalind", "Thaddeus", "Ludmila",
           "Caspian", "Hortense", "Joaquin", "Ngozi", "Percival", "Soledad", "Anselm",
           "Margarethe", "Dmitri", "Clementine", "Ignatius", "Yusra", "Fernando", "Gertrude",
           "Arjun", "Winifred", "Mustafa", "Rowena", "Bjorn", "Consuelo", "Ezekiel"]
FAMILY_2 = ["Vanderbilt", "Oduya", "Sandoval", "Fitzgerald", "Kuznetsov", "Harrington",
            "Nwachukwu", "Lindgren", "Montague", "Szabo", "Ferreira", "Blackwood", "Ishikawa",
            "Grünwald", "Okafor", "Prescott", "Villanueva", "Dziedzic", "Ashworth", "Mendoza"]
CITIES_2 = [("Pocatello", "Idaho"), ("Yakima", "WA"), ("Tuscaloosa", "Alabama"),
            ("Flagstaff", "AZ"), ("Bangor", "Maine"), ("Lafayette", "LA"),
            ("Sioux Falls", "South Dakota"), ("Modesto", "CA"), ("Missoula", "MT"),
            ("Erie", "Pennsylvania"), ("Dubuque", "IA"), ("Roanoke", "Virginia"),
            ("Santa Fe", "NM"), ("Fargo", "North Dakota"), ("Macon", "GA")]
RELATIONS = ["niece", "grandson", "neighbour", "husband", "caregiver", "brother"]


def make_2(r: random.Random) -> list[dict]:
    rows = []
    for _ in range(90):
        given, family = r.choice(GIVEN_2), r.choice(FAMILY_2)
        city, state = r.choice(CITIES_2)
        template = r.randrange(7)
        if template == 0:
            age = str(r.randint(90, 106))
            unit = r.choice(["yo", "y/o", "yr old", "years old"])
            text = (f"Resident of {city}, {state}. {given} {family} ({age} {unit}) fell at "
                    f"home; {family} denies head strike.")
            labels = [["CITY", city], ["NAME", f"{given} {family}"], ["AGE", age],
                      ["NAME", family]]
        elif template == 1:
            relation = r.choice(RELATIONS)
            text = (f"History obtained from the {relation}, {given.lower()} "
                    f"{family.lower()}, who visits daily.")
            labels = [["NAME", f"{given.lower()} {family.lower()}"]]
        elif template == 2:
            plate, date = _plate(r), _date(r)
            text = (f"Police report {date}: vehicle {r.choice(PLATE_WORDS)} {plate}, "
                    f"driver {given} {family}.")
            labels = [["DATE", date], ["VEHICLE", plate], ["NAME", f"{given} {family}"]]
        elif template == 3:
            serial = _serial(r)
            text = (f"Replaced the {r.choice(DEVICES)}; old unit {r.choice(SERIAL_WORDS)}: "
                    f"{serial} returned to the maker.")
            labels = [["DEVICE", serial]]
        elif template == 4:
            email = _email(r, given, family)
            record = _record(r)
            text = f"Forms sent to {email}; chart cross-ref {record}."
            labels = [["EMAIL", email], ["ID", record]]
        elif template == 5:
            age = str(r.randint(90, 104))
            text = f"Patient aged {age}, a widow since {_date(r)}."
            labels = [["AGE", age], ["DATE", text.split("since ")[1].rstrip(".")]]
        else:
            text = (f"Message left for {given} {family} about the biopsy; "
                    f"{given} called back from {city}, {state}.")
            labels = [["NAME", f"{given} {family}"], ["NAME", given], ["CITY", city]]
        rows.append({"text": text, "labels": labels})
    for _ in range(30):
        rows.append({"text": r.choice(CLEAN).format(drug=r.choice(DRUGS)), "labels": []})
    r.shuffle(rows)
    return rows


# Set 3: the twelve kinds sets 1 and 2b never label (PHONE, FAX, SSN, MRN, HEALTH_PLAN,
# ACCOUNT, CARD, LICENSE, URL, IP, ZIP, ADDRESS), in clinical, billing and credit sentences,
# plus clean sentences full of numbers that are not identifiers (doses, labs, vitals, years,
# counts, money). New templates and value lists, written without reading the rules. A
# template is a list of pieces: plain text, or (kind, value) for a labelled identifier; the
# CITY of an address line is labelled too, so that hiding it is not counted as a false hide.
CITIES_3 = [("Boise", "ID"), ("Ithaca", "NY"), ("Tallahassee", "FL"), ("Akron", "OH"),
            ("Reno", "NV"), ("Bozeman", "MT"), ("Lowell", "MA"), ("Rapid City", "SD"),
            ("Durham", "NC"), ("Topeka", "KS"), ("Muncie", "IN"), ("Olympia", "WA"),
            ("Joplin", "MO"), ("Laredo", "TX"), ("Pueblo", "CO"), ("Hilo", "HI")]
STREETS_3 = ["Birchwood Lane", "Old Mill Road", "W. Harrison St.", "N Lamar Blvd",
             "Sycamore Court", "Pinecrest Avenue", "E 14th Street", "Quail Hollow Dr.",
             "Riverside Terrace", "Juniper Way", "S. Main St", "Cottonwood Circle",
             "Hawthorne Pl.", "County Road 12", "Lakeview Pkwy", "Orchard Hill Rd"]
UNITS_3 = ["Apt 5C", "Apt. 12", "Unit 204", "Suite 110", "#3", "Ste 4B", "Apartment 7",
           "Unit B", "Lot 19", "Fl 2"]
DRUGS_3 = ["metoprolol", "lisinopril", "metformin", "apixaban", "gabapentin", "sertraline",
           "atorvastatin", "levothyroxine", "furosemide", "prednisone"]
PHONE_LEADS = ["Call back at", "Cell:", "Home phone", "Best number is", "Tel.",
               "She can be reached on", "Pager", "Daughter's mobile:"]
FAX_LEADS = ["fax", "Fax:", "fax no.", "F:", "fax number", "faxed to"]
SSN_LEADS = ["SSN", "SSN:", "SS#", "social security no.", "Social Security number",
             "soc. sec. #"]
MRN_LEADS = ["MRN", "MRN:", "MR#", "medical record no.", "Med. Rec. #", "hospital number",
             "chart no.", "medical record number"]
PLAN_LEADS = ["Member ID", "member ID:", "Medicare ID", "Medicaid no.", "subscriber ID",
              "insurance ID #", "policy number", "health plan no.", "BCBS ID"]
ACCOUNT_LEADS = ["account number", "acct #", "Acct. No.", "billing account",
                 "patient account", "checking account", "guarantor acct:", "account"]
CARD_LEADS = ["card", "credit card number", "the card", "debit card", "card no.",
              "card number", "the credit card"]
LICENSE_LEADS = ["driver's license", "DL#", "driver licence no.", "DL:", "license number",
                 "CDL", "state ID/DL", "drivers lic."]
URL_VALUES = ["https://www.caringbridge.org/visit/tomashuber", "www.gofundme.com/f/help-marisa-k",
              "facebook.com/dana.whitlock.77", "http://blog.livingwithcf.net/about",
              "instagram.com/runner_grace88", "https://linkedin.com/in/kpatel-rn",
              "www.ollieshomebakery.com", "https://mychart.riverbendhealth.org/visit?id=88213",
              "youtube.com/@stroke-recovery-diary", "http://www.hernandezfamilyfarm.net/",
              "tiktok.com/@benji.walks.again", "https://ko-fi.com/lucyparalympian"]
CLEAN_3 = [
    "Metoprolol 25 mg PO BID; hold if HR under 55 or SBP under 100.",
    "BP 132/84, HR 76, RR 16, SpO2 97% on room air, T 37.2 C.",
    "WBC 11.2, Hgb 9.8, platelets 245,000; lactate 1.9.",
    "Creatinine 1.42 mg/dL, eGFR 48, potassium 5.1 mmol/L.",
    "Insulin glargine 22 units at bedtime plus 4 units lispro with meals.",
    "Weight 84.3 kg, BMI 27.6; down 3.5 kg since the last visit.",
    "Lisinopril 10 mg daily, dispense 90 tablets with 3 refills.",
    "Smoked 1 pack a day for 30 years, quit in 2015.",
    "HbA1c 7.8% in 2023, now 6.9%; LDL 142 mg/dL.",
    "INR 2.4 on warfarin 5 mg; recheck in 7 days.",
    "Gravida 3 para 2, 38 weeks by dates, fetal heart rate 140.",
    "Balance of $1,284.50 due in 30 days, or 12 payments of $107.04.",
    "APR 19.99% on the medical credit line, limit $5,000.",
    "Claim for CPT 99214 and ICD-10 E11.9 paid at $128.61.",
    "Normal saline at 125 mL/hr, 2 liters over the next 16 hours.",
    "A 67-year-old with an EF of 35% and 2+ pitting edema to the knees.",
    "Dialysis 3 times a week, 4 hours each, since 2019.",
    "Took 1000 mg of acetaminophen at 0800 and 400 mg ibuprofen at 1400.",
    "Echo shows LVEF 55-60%, RVSP 38 mmHg, no effusion.",
    "Glucose 212 mg/dL fasting; increase {drug} to 1000 mg twice daily.",
    "Walked 6 minutes, 410 meters, lowest saturation 91%.",
    "Credit score 712; approved for 24 months at 0% interest.",
    "Score 26/30 on the MoCA, 3/3 on recall.",
    "TSH 0.34 mIU/L, free T4 1.6 ng/dL; reduce {drug} to 88 mcg.",
    "Estimated blood loss 250 mL; 2 units PRBC given in 2021.",
]


def _digits(r: random.Random, n: int) -> str:
    return "".join(str(r.randint(0, 9)) for _ in range(n))


def _us_number(r: random.Random) -> tuple[str, str, str]:
    return (f"{r.randint(2, 9)}{_digits(r, 1)}{r.randint(1, 9)}",
            f"{r.randint(2, 9)}{_digits(r, 2)}", _digits(r, 4))


def _phone(r: random.Random, extension: bool | None = None) -> str:
    area, exchange, line = _us_number(r)
    shape = r.randrange(9)
    if shape == 0:
        number = f"({area}) {exchange}-{line}"
    elif shape == 1:
        number = f"{area}-{exchange}-{line}"
    elif shape == 2:
        number = f"{area}.{exchange}.{line}"
    elif shape == 3:
        number = f"+1 {area} {exchange} {line}"
    elif shape == 4:
        number = f"1-{area}-{exchange}-{line}"
    elif shape == 5:
        number = f"+1 ({area}) {exchange}-{line}"
    else:
        number = r.choice([f"+44 20 {_digits(r, 4)} {_digits(r, 4)}",
                           f"+49 30 {_digits(r, 6)}", f"+91 9{_digits(r, 4)} {_digits(r, 5)}",
                           f"+33 1 {_digits(r, 2)} {_digits(r, 2)} {_digits(r, 2)} "
                           f"{_digits(r, 2)}", f"+52 55 {_digits(r, 4)} {_digits(r, 4)}",
                           f"+61 4{_digits(r, 2)} {_digits(r, 3)} {_digits(r, 3)}"])
    if extension if extension is not None else r.random() < 0.4:
        number += r.choice([" ext. ", " x", " ext ", " extension "]) + str(r.randint(2, 9999))
    return number


def _fax(r: random.Random) -> str:
    area, exchange, line = _us_number(r)
    return r.choice([f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}",
                     f"{area}.{exchange}.{line}", f"1-{area}-{exchange}-{line}"])


def _ssn(r: random.Random) -> str:
    area = r.choice([n for n in range(1, 900) if n != 666 and n != 0])
    group, serial = r.randint(1, 99), r.randint(1, 9999)
    sep = r.choice(["-", "-", "", " "])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def _mrn(r: random.Random) -> str:
    return r.choice([_digits(r, 7), "00" + _digits(r, 6), f"{_digits(r, 2)}-{_digits(r, 2)}-"
                     f"{_digits(r, 2)}-{_digits(r, 2)}", "A" + _digits(r, 7),
                     "H" + _digits(r, 8), f"{_digits(r, 3)}-{_digits(r, 4)}",
                     "E" + _digits(r, 9)])


def _mbi(r: random.Random) -> str:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    alnum = letters + "0123456789"
    c = [str(r.randint(1, 9)), r.choice(letters), r.choice(alnum), _digits(r, 1),
         r.choice(letters), r.choice(alnum), _digits(r, 1), r.choice(letters),
         r.choice(letters), _digits(r, 1), _digits(r, 1)]
    text = "".join(c)
    return f"{text[:4]}-{text[4:7]}-{text[7:]}" if r.random() < 0.5 else text


def _plan(r: random.Random, lead: str) -> str:
    if lead.startswith("Medicare"):
        return _mbi(r)
    if lead.startswith("Medicaid"):
        return r.choice([_digits(r, 8) + r.choice("ABCDEFGH"), "RX" + _digits(r, 7)])
    prefix = r.choice(["XEH", "YRX", "W", "ZGP", "U", "JQH"])
    return r.choice([prefix + _digits(r, 9), prefix + _digits(r, 8) + "01",
                     f"{prefix}{_digits(r, 3)}-{_digits(r, 3)}-{_digits(r, 3)}"])


def _account(r: random.Random) -> str:
    return r.choice([_digits(r, 12), "00" + _digits(r, 9), f"{_digits(r, 4)}-{_digits(r, 6)}",
                     f"{_digits(r, 4)} {_digits(r, 4)} {_digits(r, 4)}",
                     f"{_digits(r, 2)}-{_digits(r, 4)}-{_digits(r, 3)}", "G" + _digits(r, 8),
                     "PA-" + _digits(r, 7), f"DE{_digits(r, 2)} {_digits(r, 4)} {_digits(r, 4)}"
                     f" {_digits(r, 4)} {_digits(r, 4)} {_digits(r, 2)}"])


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(r: random.Random) -> str:
    prefix = r.choice(["4", "4", "51", "53", "55", "2221", "6011", "34", "37"])
    length = 15 if prefix in ("34", "37") else 16
    number = _luhn_complete(prefix + _digits(r, length - len(prefix) - 1))
    sep = r.choice([" ", "-", " ", "-", ""])
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def _license(r: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTWY"
    return r.choice([r.choice(letters) + _digits(r, 7), _digits(r, 8),
                     f"{_digits(r, 3)} {_digits(r, 3)} {_digits(r, 3)}",
                     f"{r.choice(letters)}{_digits(r, 3)}-{_digits(r, 4)}-{_digits(r, 4)}",
                     f"{r.choice(letters)}{_digits(r, 3)}-{_digits(r, 3)}-{_digits(r, 2)}-"
                     f"{_digits(r, 3)}-{_digits(r, 1)}", r.choice(letters) + _digits(r, 12),
                     f"{r.choice(letters)}{r.choice(letters)}{_digits(r, 6)}"])


def _ip(r: random.Random, v6: bool | None = None) -> str:
    if v6 if v6 is not None else r.random() < 0.5:
        groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
        shape = r.randrange(3)
        if shape == 0:
            return ":".join(groups)
        if shape == 1:
            return f"2600:{groups[1]}:{groups[2]}:{groups[3]}::{groups[7]}"
        return f"fe80::{groups[4]}:{groups[5]}:{groups[6]}:{groups[7]}"
    first = r.choice([73, 98, 24, 172, 192, 10, 68, 107, 203])
    if first == 192:
        return f"192.168.{r.randint(0, 20)}.{r.randint(2, 254)}"
    return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _zip(r: random.Random, plus4: bool | None = None) -> str:
    code = f"{r.randint(1, 99):02d}{_digits(r, 3)}"
    return code + "-" + _digits(r, 4) if (plus4 if plus4 is not None else r.random() < 0.4) \
        else code


def _address(r: random.Random, unit: bool | None = None) -> str:
    if r.random() < 0.08:
        return f"PO Box {r.randint(10, 9999)}"
    street = f"{r.randint(1, 9999)} {r.choice(STREETS_3)}"
    if unit if unit is not None else r.random() < 0.6:
        street += r.choice([", ", " "]) + r.choice(UNITS_3)
    return street


def _address_line(r: random.Random) -> list:
    city, state = r.choice(CITIES_3)
    return [("ADDRESS", _address(r)), ", ", ("CITY", city), f", {state} ", ("ZIP", _zip(r))]


def _lead(r: random.Random, leads: list[str]) -> str:
    return r.choice(leads)


def _templates_3(r: random.Random) -> list:
    drug, dose = r.choice(DRUGS_3), r.choice([5, 10, 20, 25, 40, 50, 100])
    plan_lead = _lead(r, PLAN_LEADS)
    mrn_lead = _lead(r, MRN_LEADS)
    return [
        [f"{_lead(r, PHONE_LEADS)} ", ("PHONE", _phone(r)), " if the swelling gets worse."],
        ["Daughter's cell ", ("PHONE", _phone(r, False)), "; home phone ",
         ("PHONE", _phone(r, False)), "."],
        ["Pharmacy reached at ", ("PHONE", _phone(r, True)), f"; {drug} {dose} mg approved "
         "for 90 days."],
        ["Lives abroad half the year; reach him on ", ("PHONE", _phone(r)), " (WhatsApp)."],
        [f"Please send the discharge summary by {_lead(r, FAX_LEADS)} ", ("FAX", _fax(r)),
         ", attention medical records, 14 pages."],
        ["Referral from Lakeside Orthopedics, tel. ", ("PHONE", _phone(r, False)), ", fax ",
         ("FAX", _fax(r)), "."],
        ["Prior auth form returned via ", ("FAX", _fax(r)), r.choice([" (fax)", " fax line",
                                                                      " (F)"]),
         " on the 2nd attempt."],
        [f"Registration: {_lead(r, SSN_LEADS)} ", ("SSN", _ssn(r)), f", {plan_lead} ",
         ("HEALTH_PLAN", _plan(r, plan_lead)), "."],
        [f"Credit application: {_lead(r, SSN_LEADS)} ", ("SSN", _ssn(r)),
         f", income $48,000, {r.randint(2, 19)} years at current job."],
        [f"{mrn_lead} ", ("MRN", _mrn(r)), f": {r.randint(40, 88)}-year-old with CHF, EF "
         f"{r.choice([25, 30, 35, 40])}%, admitted for diuresis."],
        [f"Outside records under {_lead(r, MRN_LEADS)} ", ("MRN", _mrn(r)),
         f" requested; {r.randint(3, 60)} pages received."],
        [f"Prior authorization needs the {plan_lead} ", ("HEALTH_PLAN", _plan(r, plan_lead)),
         f"; copay ${r.choice([20, 35, 40, 50])}."],
        [f"Statement for {_lead(r, ACCOUNT_LEADS)} ", ("ACCOUNT", _account(r)),
         ": balance $1,284.50, 12 payments of $107.04."],
        ["Set up autopay from ", r.choice(["checking account ", "acct no. ", "account # "]),
         ("ACCOUNT", _account(r)), "; first draft on the 15th."],
        [f"Paid the ${r.choice([25, 35, 40])} copay with {_lead(r, CARD_LEADS)} ",
         ("CARD", _card(r)), "."],
        ["Card on file ", ("CARD", _card(r)), " was declined twice for the $212.40 balance."],
        [f"ID checked: {_lead(r, LICENSE_LEADS)} ", ("LICENSE", _license(r)),
         ", issued in Oregon."],
        [f"{_lead(r, LICENSE_LEADS)} ", ("LICENSE", _license(r)),
         "; he drives commercially and needs the DOT physical."],
        [f"She is a pharmacist and gave her {r.choice(['license #', 'licence no.'])} ",
         ("LICENSE", _license(r)), " for the disability form."],
        ["She found the clinic at ", ("URL", r.choice(URL_VALUES)), " and booked online."],
        ["Family started a page at ", ("URL", r.choice(URL_VALUES)),
         " to cover the 3 surgeries."],
        ["Portal audit: sign-in from ", ("IP", _ip(r, False)), " at 0730, 2 failed attempts."],
        ["The CPAP uploads nightly from IP address ", ("IP", _ip(r, True)),
         f"; AHI {r.randint(1, 9)}.{r.randint(0, 9)} events/hour."],
        ["Telehealth link sent to ", ("URL", r.choice(URL_VALUES)),
         "; the session connected from ", ("IP", _ip(r)), "."],
        ["Mailing address: ", *_address_line(r), "."],
        ["Moved to ", ("ADDRESS", _address(r, True)), " last spring; new zip code is ",
         ("ZIP", _zip(r)), "."],
        ["Home health visits at ", ("ADDRESS", _address(r)), " (", *_address_line(r)[2:],
         "), 3 times a week."],
        ["Card ", ("CARD", _card(r)), " charged; billing address ", *_address_line(r), "."],
        ["Please fax the forms to ", ("FAX", _fax(r)), " or mail them to ", *_address_line(r),
         "."],
        ["Patient portal is at ", ("URL", r.choice(URL_VALUES)), "; questions to ",
         ("PHONE", _phone(r)), "."],
        [f"Face sheet: {mrn_lead} ", ("MRN", _mrn(r)), f", {_lead(r, SSN_LEADS)} ",
         ("SSN", _ssn(r)), f", {plan_lead} ", ("HEALTH_PLAN", _plan(r, plan_lead)), "."],
        [f"Claim denied under {plan_lead} ", ("HEALTH_PLAN", _plan(r, plan_lead)),
         f"; bill {_lead(r, ACCOUNT_LEADS)} ", ("ACCOUNT", _account(r)), " instead."],
        [f"Insurance card photo: {plan_lead} ", ("HEALTH_PLAN", _plan(r, plan_lead)),
         f"; subscriber's {_lead(r, SSN_LEADS)} ", ("SSN", _ssn(r)), "."],
        [f"Collections note: {_lead(r, ACCOUNT_LEADS)} ", ("ACCOUNT", _account(r)),
         f", {_lead(r, SSN_LEADS)} ", ("SSN", _ssn(r)), ", card ", ("CARD", _card(r)),
         " on file."],
        [f"Audit: {mrn_lead} ", ("MRN", _mrn(r)), " opened from workstation IP ",
         ("IP", _ip(r)), f" {r.randint(3, 40)} times this week."],
        [f"Lab requisition for {mrn_lead} ", ("MRN", _mrn(r)), "; results posted at ",
         ("URL", r.choice(URL_VALUES)), "."],
        [f"Scanned {_lead(r, LICENSE_LEADS)} ", ("LICENSE", _license(r)),
         " at check-in; consent signed at ", ("URL", r.choice(URL_VALUES)), "."],
        ["Glucose monitor is billed to ", r.choice(["account ", "acct # "]),
         ("ACCOUNT", _account(r)), " and reports from ", ("IP", _ip(r)), "."],
    ]


KINDS_3 = ("PHONE", "FAX", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT", "CARD", "LICENSE", "URL",
           "IP", "ZIP", "ADDRESS")


def make_3(r: random.Random, each: int = 20, clean: int = 26) -> list[dict]:
    """Templates picked until every kind has ``each`` identifiers (each pick a random template
    among those holding the kind with fewest so far, weighted by its number of identifiers),
    then ``clean`` clean texts."""
    rows, counts = [], dict.fromkeys(KINDS_3, 0)
    while min(counts.values()) < each:
        rarest = min(counts.values())
        wanted = r.choice([kind for kind in KINDS_3 if counts[kind] == rarest])
        templates = [t for t in _templates_3(r)
                     if any(isinstance(p, tuple) and p[0] == wanted for p in t)]
        weights = [sum(isinstance(p, tuple) for p in t) for t in templates]
        row = _assemble(r.choices(templates, weights)[0])
        for kind, _ in row["labels"]:
            if kind in counts:
                counts[kind] += 1
        rows.append(row)
    for _ in range(clean):
        rows.append({"text": r.choice(CLEAN_3).format(drug=r.choice(DRUGS_3)), "labels": []})
    r.shuffle(rows)
    return rows


def _assemble(pieces: list) -> dict:
    text, labels, spans = "", [], []
    for piece in pieces:
        if isinstance(piece, tuple):
            spans.append((len(text), len(text) + len(piece[1])))
            labels.append([piece[0], piece[1]])
            text += piece[1]
        else:
            text += piece
    position = 0  # the labels must be found where they were put, left to right
    for (_, sub), (start, _) in zip(labels, spans, strict=True):
        assert text.index(sub, position) == start, (text, sub)
        position = start + len(sub)
    return {"text": text, "labels": labels}


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    n = sum(len(row["labels"]) for row in rows)
    print(f"wrote {len(rows)} texts, {n} identifiers to {path}")


def main() -> int:
    _write(OUT, make(random.Random(SEED)))
    _write(OUT_2, make_2(random.Random(SEED_2)))
    _write(OUT_3, make_3(random.Random(SEED_3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
