// Folder-level import cycles (dependency-cruiser finds file-level ones): two
// areas such as control-plane/api and control-plane/mesh must not import each
// other, even through different files. Reads depcruise's JSON on stdin.
import { readFileSync } from 'node:fs';

const { modules } = JSON.parse(readFileSync(0, 'utf8'));
/**
 * An area: a product file's sub-folder (control-plane/api); a file directly in
 * a top folder (control-plane/server.ts, which wires the areas) is one alone.
 */
const area = (path) => {
  const parts = path.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : path;
};
const isTest = (path) => /(\.test\.ts$|\/testdata\/|\/testing\/|^test\/|^bench\/)/.test(path);

const edges = new Map();
for (const m of modules) {
  if (isTest(m.source) || m.source.startsWith('node_modules')) continue;
  for (const d of m.dependencies) {
    if (!d.resolved || d.resolved.startsWith('node_modules') || d.coreModule || isTest(d.resolved)) continue;
    const [from, to] = [area(m.source), area(d.resolved)];
    if (from === to) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from).has(to)) edges.get(from).set(to, `${m.source} -> ${d.resolved}`);
  }
}

// Any edge a -> b where b reaches a back is part of a cycle.
const reaches = (from, target, seen = new Set()) => {
  if (from === target) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  for (const next of edges.get(from)?.keys() ?? []) if (reaches(next, target, seen)) return true;
  return false;
};
const found = [];
for (const [from, tos] of edges) for (const [to, via] of tos) if (reaches(to, from)) found.push(`${from} -> ${to} (${via})`);
if (found.length) {
  console.error(`folder cycles:\n  ${found.join('\n  ')}`);
  process.exit(1);
}
console.log(`no folder cycles among ${edges.size} areas`);
