#!/usr/bin/env python3
"""Precision and synthetic-error recall of the sex, age and order discrepancies.

Reads the MTSamples radiology set of ../shared/corpus (nothing of it is copied into the
project), wraps each report in a DiagnosticReport for `reportsplit extract --fhir` with a
contained Patient (sex and age as the text states them: "a 45-year-old female") and its sample
name as `code`, and counts the sex, age and order DetectedIssues:

- as stated (every alert is a false one, unless the report itself is wrong);
- with synthetic wrong-patient / wrong-order errors: the sex flipped, the birth year moved to
  make the patient 80, the region of the order swapped for another region of
  mappings/order_regions.tsv, the order given the side the text does not name.

Usage: scripts/discrepancy-facts.py [path/to/reportsplit] (default target/debug/reportsplit,
or $CARGO_TARGET_DIR/debug/reportsplit). Prints one line per run.
"""

import base64
import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared/corpus/mtsamples/mtsamples_radiology.csv"
KINDS = ("sex-discrepancy", "age-discrepancy", "order-discrepancy")
REPORT_YEAR = 2020


def binary():
    if len(sys.argv) > 1:
        return sys.argv[1]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "debug/reportsplit")


def regions():
    out = {}
    for line in (ROOT / "mappings/order_regions.tsv").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("region\t"):
            continue
        name, words, _ = line.split("\t")
        out[name] = set(words.split("|"))
    return out


def stated(text):
    """(sex, age) as the text states them, else None each."""
    sex = age = None
    m = re.search(r"(\d{1,3})[- ]year[- ]old\s+(\w+)", text, re.I)
    if m:
        age = int(m.group(1))
        word = m.group(2).lower()
        sex = {"female": "female", "woman": "female", "girl": "female",
               "male": "male", "man": "male", "boy": "male", "gentleman": "male"}.get(word)
    if sex is None:
        she = re.search(r"\b(she|her|female|woman)\b", text, re.I)
        he = re.search(r"\b(he|his|male|man)\b", text, re.I)
        if she and not he:
            sex = "female"
        elif he and not she:
            sex = "male"
    return sex, age


def report(index, text, title, sex, age):
    patient = {"resourceType": "Patient", "id": "pt"}
    if sex:
        patient["gender"] = sex
    if age is not None:
        patient["birthDate"] = str(REPORT_YEAR - age)
    return {
        "resourceType": "DiagnosticReport", "id": f"m{index}", "meta": {"versionId": "1"},
        "status": "final", "contained": [patient], "code": {"text": title},
        "subject": {"reference": "#pt"}, "effectiveDateTime": f"{REPORT_YEAR}-06-15T10:00:00Z",
        "presentedForm": [{"contentType": "text/plain",
                           "data": base64.b64encode(text.encode()).decode()}],
    }


def issues(exe, reports):
    """Count of DetectedIssues by kind over `reports`."""
    if not reports:
        return {}
    ndjson = "".join(json.dumps(r) + "\n" for r in reports)
    done = subprocess.run([exe, "extract", "--fhir"], input=ndjson.encode(),
                          capture_output=True, check=True)
    counts = {}
    for line in done.stdout.decode().splitlines():
        for entry in json.loads(line).get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] != "DetectedIssue":
                continue
            code = resource["code"]["coding"][0]["code"]
            if code in KINDS:
                counts[code] = counts.get(code, 0) + 1
    return counts


def main():
    csv.field_size_limit(10**8)
    exe = binary()
    table = regions()
    names = sorted(table)
    rows = [r for r in csv.DictReader(CORPUS.open()) if (r.get("transcription") or "").strip()]
    base, sex_flip, age_flip, region_swap, side_true, side_flip = [], [], [], [], [], []
    for index, row in enumerate(rows):
        text = row["transcription"]
        title = (row.get("sample_name") or "").strip() or "Radiology"
        sex, age = stated(text)
        dr = report(index, text, title, sex, age)
        base.append(dr)
        if sex:
            flipped = copy.deepcopy(dr)
            flipped["contained"][0]["gender"] = {"female": "male", "male": "female"}[sex]
            sex_flip.append(flipped)
        old = copy.deepcopy(dr)
        old["contained"][0]["birthDate"] = str(REPORT_YEAR - 80)
        age_flip.append(old)
        title_words = set(re.findall(r"[a-z]+", title.lower()))
        named = [r for r in names if title_words & table[r]]
        if len(named) != 1:
            continue
        region = named[0]
        other = names[(names.index(region) + 1) % len(names)]
        swapped = copy.deepcopy(dr)
        swapped["code"]["text"] = f"{other} study"
        region_swap.append(swapped)
        words = set(re.findall(r"[a-z]+", text.lower()))
        if ("left" in words) != ("right" in words) and "bilateral" not in words:
            side = "left" if "left" in words else "right"
            other_side = "right" if side == "left" else "left"
            for out, name in ((side_true, side), (side_flip, other_side)):
                sided = copy.deepcopy(dr)
                sided["code"]["text"] = f"{region} {name}"
                out.append(sided)
    print(f"reports={len(base)} with-sex={len(sex_flip)} "
          f"with-age={sum(1 for r in base if 'birthDate' in r['contained'][0])} "
          f"with-region={len(region_swap)} with-side={len(side_true)}")
    for name, reports in (("as-stated", base), ("side-as-stated", side_true),
                          ("sex-flipped", sex_flip), ("age-80", age_flip),
                          ("region-swapped", region_swap), ("side-flipped", side_flip)):
        counts = issues(exe, reports)
        print(f"{name} reports={len(reports)} " +
              " ".join(f"{k}={counts.get(k, 0)}" for k in KINDS))


if __name__ == "__main__":
    main()
