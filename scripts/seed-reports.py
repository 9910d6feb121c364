#!/usr/bin/env python3
"""Loads N synthetic radiology DiagnosticReports into a FHIR server, for benchmarks.

Usage: scripts/seed-reports.py BASE_URL N [--batch 200] [--patients 100]

The reports are written by this script (our own wording, no corpus text): a few exam templates
with varied sides, sizes and negations, as text/plain attachments, clinical dates
(effectiveDateTime) spread over 2015-2025, category RAD, status final. They are sent as
transaction Bundles of PUTs with ids bench-<i>, so a rerun replaces instead of duplicating.
Standard library only.
"""
import argparse
import base64
import json
import random
import sys
import time
import urllib.request

RAD = "http://terminology.hl7.org/CodeSystem/v2-0074"

EXAMS = [
    ("36643-5", "XR Chest 2 Views", "Cough.", [
        "The heart size is normal.",
        "There is a patchy opacity in the {side} lower lobe.",
        "No pleural effusion or pneumothorax.",
    ], ["{Side} lower lobe pneumonia.", "No pneumothorax."]),
    ("24627-2", "CT Chest", "Nodule follow-up.", [
        "A {size} mm nodule in the {side} upper lobe is stable.",
        "No mediastinal lymphadenopathy.",
        "Mild emphysema.",
    ], ["Stable {size} mm {side} upper lobe nodule.", "Follow-up CT in 12 months is recommended."]),
    ("30799-1", "CT Head WO contrast", "Fall.", [
        "No intracranial hemorrhage or mass effect.",
        "The ventricles are normal in size.",
        "No acute fracture.",
    ], ["No acute intracranial abnormality."]),
    ("24558-9", "CT Abdomen and Pelvis W contrast", "Abdominal pain.", [
        "A {size} mm stone in the {side} kidney without hydronephrosis.",
        "No free air.",
        "The appendix is normal.",
    ], ["Nonobstructing {side} renal stone.", "No acute abdominal process."]),
    ("24531-6", "US Kidney", "Flank pain.", [
        "Moderate hydronephrosis of the {side} kidney.",
        "No renal mass.",
    ], ["Moderate {side} hydronephrosis."]),
]


def report(i: int, patients: int, rng: random.Random) -> dict:
    loinc, display, history, findings, impression = EXAMS[i % len(EXAMS)]
    side = rng.choice(["left", "right"])
    fill = {"side": side, "Side": side.capitalize(), "size": rng.randint(3, 14)}
    text = "EXAM: {}\nHISTORY: {}\nFINDINGS:\n{}\nIMPRESSION:\n{}\n".format(
        display,
        history,
        "\n".join(f.format(**fill) for f in findings),
        "\n".join(f"{n}. {t.format(**fill)}" for n, t in enumerate(impression, 1)),
    )
    day = 1420070400 + rng.randrange(0, 11 * 365 * 86400)  # 2015-01-01 .. ~2025-12
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day))
    return {
        "resourceType": "DiagnosticReport",
        "id": f"bench-{i}",
        "status": "final",
        "category": [{"coding": [{"system": RAD, "code": "RAD"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}]},
        "subject": {"reference": f"Patient/bench-p{i % patients}"},
        "effectiveDateTime": when,
        "issued": when,
        "presentedForm": [{"contentType": "text/plain",
                           "data": base64.b64encode(text.encode()).decode()}],
    }


def post(base: str, bundle: dict) -> None:
    request = urllib.request.Request(
        base, data=json.dumps(bundle).encode(), method="POST",
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        if response.status != 200:
            raise SystemExit(f"transaction failed: HTTP {response.status}")


def transaction(base: str, resources: list) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("n", type=int)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--patients", type=int, default=100)
    args = parser.parse_args()
    base = args.base.rstrip("/")
    rng = random.Random(20261128)
    patients = [{"resourceType": "Patient", "id": f"bench-p{p}", "gender": "unknown"}
                for p in range(args.patients)]
    post(base, transaction(base, patients))
    started = time.time()
    for start in range(0, args.n, args.batch):
        batch = [report(i, args.patients, rng) for i in range(start, min(args.n, start + args.batch))]
        post(base, transaction(base, batch))
        print(f"\r{min(args.n, start + args.batch)}/{args.n} reports", end="", file=sys.stderr)
    print(f"\nseeded {args.n} reports in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
