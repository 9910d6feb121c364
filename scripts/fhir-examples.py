#!/usr/bin/env python3
"""Prints the example Observations of docs/fhir-model.md: runs `reportsplit extract --fhir`
on fixture reports (crates/split/tests/fixtures), each wrapped as a DiagnosticReport with
meta.versionId, and keeps, per report, the finding Observations that show descriptors,
further sites or derivedFrom, trimmed to the elements that differ between findings.

    python3 scripts/fhir-examples.py [path/to/reportsplit] > /tmp/examples.md
"""
import base64
import json
import subprocess
import sys

FIXTURES = "crates/split/tests/fixtures"
EXAMPLES = [
    ("CT", "61_ct_abdomen_appendicitis", "ct", 2),
    ("MRI", "59_mr_brain_stroke", "mr", 2),
    ("Ultrasound", "60_us_scrotum_torsion", "us", 1),
    ("Mammography", "62_mg_screening_birads", "mg", 2),
]
# Elements every finding Observation shares (see the tables above), and the Observation's own
# derivation-reference (the sentence): left out of the examples.
TRIMMED = ["extension", "identifier", "status", "category", "subject", "effectiveDateTime",
           "issued"]


def report(name, rid):
    with open(f"{FIXTURES}/{name}.txt", encoding="utf-8") as f:
        text = f.read()
    return text, {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": {"versionId": "1"},
        "status": "final",
        "code": {"text": name},
        "subject": {"reference": "Patient/p1"},
        "imagingStudy": [{"reference": f"ImagingStudy/{rid}"}],
        "presentedForm": [{"contentType": "text/plain; charset=utf-8",
                           "data": base64.b64encode(text.encode()).decode()}],
    }


def interesting(resource):
    codes = [c["code"].get("coding", [{}])[0].get("code", "") for c in resource.get("component", [])]
    score = sum(1 for c in codes if c.startswith("descriptor-") or c in ("300842002", "246206008",
                                                                             "246112005", "363698007"))
    derived = sum(1 for r in resource.get("derivedFrom", []) if r["reference"].startswith("urn:uuid:"))
    return score + 3 * derived


def dump(value, indent=0, width=110):
    """JSON with every value that fits in `width` on one line (readable, still valid JSON)."""
    flat = json.dumps(value, ensure_ascii=False)
    pad = " " * indent
    if len(pad) + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, list):
        items = [inner + dump(v, indent + 2, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [f"{inner}{json.dumps(k)}: {dump(v, indent + 2, width).lstrip()}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "reportsplit"
    for modality, name, rid, count in EXAMPLES:
        text, resource = report(name, rid)
        out = subprocess.run([binary, "extract", "--fhir"], input=json.dumps(resource),
                             capture_output=True, text=True, check=True).stdout
        bundle = json.loads(out.splitlines()[0])
        entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
                   and "valueCodeableConcept" in e["resource"]]
        # A diagnosis derived from an observation, with that observation; else the
        # finding with the most descriptor and site components.
        by_url = {e["fullUrl"]: e for e in entries}
        chosen = []
        for entry in entries:
            sources = [by_url[r["reference"]] for r in entry["resource"].get("derivedFrom", [])
                       if r["reference"] in by_url]
            if sources:
                chosen = [entry] + sources[: count - 1]
                break
        if not chosen:
            chosen = sorted(entries, key=lambda e: -interesting(e["resource"]))[:count]
        chosen.sort(key=lambda e: bundle["entry"].index(e))
        print(f"### {modality} (`{name}.txt`, as DiagnosticReport/{rid} version 1)\n")
        print("```json")
        for entry in chosen:
            obs = {k: v for k, v in entry["resource"].items() if k not in TRIMMED}
            print(dump({"fullUrl": entry["fullUrl"], "resource": obs}))
        print("```\n")


if __name__ == "__main__":
    main()
