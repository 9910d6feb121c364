"""Prints, per DiagnosticReport on a FHIR server, the Observations reportsplit linked to it.

Usage: python3 scripts/show-results.py BASE_URL
Used by scripts/demo.sh; reads only, with the standard library.
"""
import json
import sys
import urllib.request

BASE = sys.argv[1].rstrip("/")


def get(path):
    with urllib.request.urlopen(f"{BASE}/{path}") as response:
        return json.load(response)


def coding_text(concept):
    if not concept:
        return ""
    codings = concept.get("coding") or [{}]
    return concept.get("text") or codings[0].get("display") or codings[0].get("code", "")


def describe(obs):
    parts = [coding_text(obs.get("valueCodeableConcept"))]
    for component in obs.get("component", []):
        name = coding_text(component.get("code"))
        if "valueQuantity" in component:
            q = component["valueQuantity"]
            parts.append(f"{name} {q.get('value')} {q.get('unit', q.get('code', ''))}")
        elif "valueCodeableConcept" in component:
            parts.append(f"{name}: {coding_text(component['valueCodeableConcept'])}")
    return ", ".join(p for p in parts if p)


reports = get("DiagnosticReport?_count=100&_sort=_lastUpdated").get("entry", [])
for entry in reports:
    report = entry["resource"]
    tags = [t.get("code") for t in report.get("meta", {}).get("tag", []) if t.get("system") == "urn:reportsplit:tag"]
    print(f"\nDiagnosticReport/{report['id']}  {coding_text(report.get('code'))}  tag={tags[0] if tags else '-'}")
    for ref in report.get("result", []):
        obs = get(ref["reference"])
        code = coding_text(obs.get("code"))
        if "valueString" in obs:
            print(f"  {code:<12} {obs['valueString'][:90]}")
        else:
            codings = obs.get("code", {}).get("coding") or [{}]
            print(f"    {codings[0].get('code', ''):>10}  {code:<28} {describe(obs)}")
provenance = get("Provenance?_summary=count").get("total")
observations = get("Observation?_summary=count").get("total")
print(f"\n{observations} Observations and {provenance} Provenance resources on the server.")
