// Judges the JSON reports scripts/lint-manifests.sh collected in <work dir>: prints counts per
// profile and tool on success, every gated finding and every stale declaration on failure, and
// exits 1 on any of them.
//
// Usage: node lint-manifests-report.mjs <work dir> <kube-score version> <checkov version> <profile>...
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [work, kubeScoreVersion, checkovVersion, ...profiles] = process.argv.slice(2);
const readJson = (file) => JSON.parse(readFileSync(join(work, file), 'utf8'));

// kube-score's grades (scorecard.Grade): what a check found.
const CRITICAL = 1;
const WARNING = 5;

const failures = [];
const rows = [];
const warnings = new Map();

// --- kube-score, per profile ------------------------------------------------------------------
const kubeScore = {};
for (const profile of profiles) {
  const declared = readJson(`kube-score.${profile}.declared.json`);
  const raw = readJson(`kube-score.${profile}.raw.json`);
  const name = (o) => `${o.type_meta.kind}/${o.object_meta.name}`;
  const rawFinding = new Map();
  for (const o of raw)
    for (const c of o.checks) if (!c.skipped && c.grade <= WARNING) rawFinding.set(`${name(o)} ${c.check.id}`, c.grade);
  const counts = { critical: 0, warning: 0, declared: 0 };
  for (const o of declared) {
    for (const c of o.checks) {
      if (c.skipped || c.grade > WARNING) continue;
      const text = (c.comments ?? [])
        .map((m) => `${m.path ? `(${m.path}) ` : ''}${m.summary}${m.description ? `: ${m.description}` : ''}`)
        .join('; ');
      if (c.grade <= CRITICAL) {
        counts.critical++;
        failures.push(`kube-score ${profile} ${name(o)}: [CRITICAL] ${c.check.id}: ${text}`);
      } else {
        counts.warning++;
        const key = `${c.check.id}: ${(c.comments ?? []).map((m) => m.summary).join('; ')}`;
        warnings.set(key, (warnings.get(key) ?? 0) + 1);
      }
    }
    const ignored = o.object_meta.annotations?.['kube-score/ignore'];
    for (const id of ignored ? ignored.split(',') : []) {
      const grade = rawFinding.get(`${name(o)} ${id}`);
      if (grade === undefined)
        failures.push(
          `kube-score ${profile} ${name(o)}: declares ${id}, which finds nothing there: remove the declaration`,
        );
      else counts.declared++;
    }
  }
  kubeScore[profile] = counts;
}

// --- checkov, over all of dist/ at once ------------------------------------------------------
const results = (file) => {
  const report = readJson(file);
  // One framework gives one report; checkov gives a list when it ran several.
  const reports = Array.isArray(report) ? report : [report];
  const all = { passed: [], failed: [], skipped: [] };
  for (const r of reports) {
    all.passed.push(...(r.results?.passed_checks ?? []));
    all.failed.push(...(r.results?.failed_checks ?? []));
    all.skipped.push(...(r.results?.skipped_checks ?? []));
  }
  return all;
};
const declaredRun = results('checkov.declared.json');
const rawRun = results('checkov.raw.json');
const profileOf = (check) => check.file_path.split('/').filter(Boolean)[1];
const where = (check) => `${check.resource} (${check.file_path.replace(/^\//, '')})`;
const rawFailed = new Set(rawRun.failed.map((c) => `${c.file_path} ${c.resource} ${c.check_id}`));
const checkov = Object.fromEntries(profiles.map((p) => [p, { failed: 0, passed: 0, declared: 0 }]));
for (const c of declaredRun.passed) checkov[profileOf(c)].passed++;
for (const c of declaredRun.failed) {
  checkov[profileOf(c)].failed++;
  failures.push(`checkov ${profileOf(c)} ${where(c)}: ${c.check_id} ${c.check_name}`);
}
for (const c of declaredRun.skipped) {
  if (rawFailed.has(`${c.file_path} ${c.resource} ${c.check_id}`)) checkov[profileOf(c)].declared++;
  else
    failures.push(
      `checkov ${profileOf(c)} ${where(c)}: declares ${c.check_id}, which passes there: remove the declaration`,
    );
}

// --- report ------------------------------------------------------------------------------------
const width = Math.max(7, ...profiles.map((p) => p.length));
const pad = (s, n) => String(s).padStart(n);
console.log(
  `lint-manifests: kube-score ${kubeScoreVersion} (gates CRITICAL), checkov ${checkovVersion} (gates every failed check), over dist/{${profiles.join(',')}}`,
);
console.log(`${'profile'.padEnd(width)}  kube-score: critical warning declared   checkov: failed passed declared`);
for (const p of profiles) {
  const k = kubeScore[p];
  const c = checkov[p];
  rows.push(
    `${p.padEnd(width)}  ${pad(k.critical, 20)} ${pad(k.warning, 7)} ${pad(k.declared, 8)}   ${pad(c.failed, 15)} ${pad(c.passed, 6)} ${pad(c.declared, 8)}`,
  );
}
console.log(rows.join('\n'));
for (const [warning, count] of warnings)
  console.log(`kube-score WARNING, not gated (docs/profiles.md, "Manifest checkers"): ${count} x ${warning}`);
if (failures.length > 0) {
  console.log(
    `\nlint-manifests: FAILED, ${failures.length} problem(s): findings neither fixed nor declared, or declarations that silence nothing:`,
  );
  for (const f of failures) console.log(`  ${f}`);
  console.log('Fix each in lib/constructs/, or, where it must stay, declare it with its reason in');
  console.log('lib/constructs/checker-declarations.ts and docs/profiles.md ("Manifest checkers"); then npm run synth.');
  process.exit(1);
}
console.log('lint-manifests: OK');
