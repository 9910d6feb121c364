#!/usr/bin/env python3
"""Writes N DiagnosticReports as NDJSON from our own fixture texts, for the speed
measurements of `reportsplit extract` (scripts/bench-extract.sh, scripts/count-instructions.sh).

    scripts/bench-reports.py N OUT.ndjson FIXTURE.txt...

The texts go round-robin; every other report carries its text as a base64 text/plain
presentedForm (what a RIS sends), the others as `conclusion`. Each has a distinct id, so
the output order can be checked.
"""
import base64
import json
import sys

n, path, fixtures = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
texts = [open(f, encoding="utf-8").read() for f in sorted(fixtures)]
with open(path, "w", encoding="utf-8") as out:
    for i in range(n):
        text = texts[i % len(texts)]
        report = {
            "resourceType": "DiagnosticReport",
            "id": f"bench-{i}",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-20T10:00:00.000Z"},
            "status": "final",
            "code": {"text": "Imaging report"},
            "subject": {"reference": f"Patient/p{i % 997}"},
        }
        if i % 2 == 0:
            report["presentedForm"] = [{
                "contentType": "text/plain; charset=utf-8",
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            }]
        else:
            report["conclusion"] = text
        out.write(json.dumps(report, separators=(",", ":")) + "\n")
