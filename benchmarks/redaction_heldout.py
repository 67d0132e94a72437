"""Writes benchmarks/data/redaction_heldout.jsonl: the held-out set for bench_redaction.py.

Made by a different method from the tuning set (tests/data/redaction_tuning.jsonl, written
by hand while the rules were written): sentence templates with slots, filled at random
(fixed seed) from value lists written after the rules and without reading them; labels come
from construction. Not to be tuned on.

    .venv/bin/python benchmarks/redaction_heldout.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "redaction_heldout.jsonl"
OUT_2 = Path(__file__).resolve().parent / "data" / "redaction_heldout_2.jsonl"
SEED = 20261204
SEED_2 = 4821

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


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    n = sum(len(row["labels"]) for row in rows)
    print(f"wrote {len(rows)} texts, {n} identifiers to {path}")


def main() -> int:
    _write(OUT, make(random.Random(SEED)))
    _write(OUT_2, make_2(random.Random(SEED_2)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
