/**
 * Which top-level folder may import which (docs/architecture.md says why),
 * and no import cycles at all, type-only imports included.
 *
 *   proto         -> nothing of ours
 *   routing       -> proto (types, and proto/cause.ts for its error guards)
 *   transport     -> proto
 *   agent         -> transport, proto, routing (types only: the resource and
 *                    label shapes the agent advertises are routing's)
 *   control-plane -> transport, routing, proto
 *   cli           -> everything but test and bench
 *   web           -> nothing of ours but the console API's JSON types
 *                    (control-plane/console/wire.ts, type-only): it is the
 *                    browser's bundle
 *   test, bench   -> everything
 */
const product = '^(proto|routing|transport|agent|control-plane|cli)/';
/** Test code beside product code (unit tests, their fixtures) may use test/support. */
const testCode = '(\\.test\\.ts$|/testdata/|/testing/)';

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles, type-only ones included.', from: {}, to: { circular: true } },
    {
      name: 'proto-is-a-leaf',
      severity: 'error',
      from: { path: '^proto/' },
      to: { path: '^(routing|transport|agent|control-plane|cli|test|bench)/' },
    },
    {
      name: 'routing-is-pure',
      severity: 'error',
      from: { path: '^routing/' },
      to: { path: '^(transport|agent|control-plane|cli|test|bench)/' },
    },
    {
      name: 'routing-imports-no-io',
      severity: 'error',
      comment: 'routing/ is importable without a network, a clock or a store.',
      from: { path: '^routing/', pathNot: testCode },
      to: { dependencyTypes: ['core'], path: '^(node:)?(net|http|http2|fs|fs/promises|child_process|dgram|tls|timers)$' },
    },
    {
      name: 'transport-is-below',
      severity: 'error',
      from: { path: '^transport/', pathNot: testCode },
      to: { path: '^(routing|agent|control-plane|cli|test|bench)/' },
    },
    {
      name: 'agent-not-control-plane',
      severity: 'error',
      from: { path: '^agent/', pathNot: testCode },
      to: { path: '^(control-plane|cli|test|bench)/' },
    },
    {
      name: 'agent-uses-routing-types-only',
      severity: 'error',
      from: { path: '^agent/' },
      to: { path: '^routing/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'control-plane-not-agent',
      severity: 'error',
      from: { path: '^control-plane/', pathNot: testCode },
      to: { path: '^(agent|cli|test|bench)/' },
    },
    {
      name: 'web-is-the-browser',
      severity: 'error',
      comment: 'The browser bundle takes only the console API types from the server side.',
      from: { path: '^web/' },
      to: { path: '^(proto|routing|transport|agent|control-plane|cli|test|bench)/', pathNot: '^control-plane/console/wire\\.ts$' },
    },
    {
      name: 'web-takes-types-only',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^control-plane/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'nothing-imports-web',
      severity: 'error',
      from: { path: '^(proto|routing|transport|agent|control-plane|cli)/' },
      to: { path: '^web/' },
    },
    { name: 'cli-not-tests', severity: 'error', from: { path: '^cli/', pathNot: testCode }, to: { path: '^(test|bench)/' } },
    {
      name: 'product-not-test-support',
      severity: 'error',
      comment: 'Product code never imports test or bench code.',
      from: { path: product, pathNot: testCode },
      to: { path: '(^(test|bench)/|/testdata/|/testing/|\\.test\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.tsx', '.js'],
    },
  },
};
