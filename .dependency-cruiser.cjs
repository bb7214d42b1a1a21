// The layer order of shared/docs/architecture.md, checked on every import (dependency-cruiser;
// `npm run check:layers`, run by `npm test` through test/unit/layers.test.ts). Type-only imports
// count too: a type import against the order is still a backward dependency.
const ENGINE_FOUNDATION = '^src/engine/(api|paths|dtype|tensor|safe-path|random)\\.ts$';
// Reading an inference package's package.json (its version) loads nothing.
const INFERENCE = '(^|/)node_modules/(onnxruntime-node|onnxruntime-common|onnxruntime-web|node-llama-cpp)/(?!package\\.json$)';

/** A rule forbidding imports from `from` to `to` (paths relative to the repository root). */
function forbid(name, comment, from, to) {
  return { name, comment, severity: 'error', from, to };
}

module.exports = {
  forbidden: [
    forbid('no-cycles', 'Modules must not import each other, directly or around a loop.', {}, { circular: true }),
    forbid('no-test-tooling-in-product', 'Product code does not import tests or benchmarks.', { path: '^(src|webview)/' }, { path: '^(test|bench)/' }),

    // Between layers.
    forbid('webview-only-protocol', 'The panel runs in a browser frame: of our code it may use only src/protocol.', { path: '^webview/' }, { path: '^src/(?!protocol/)' }),
    forbid('protocol-stands-alone', 'src/protocol is the schema everyone shares; it imports no other layer.', { path: '^src/protocol/' }, { path: '^(src/(?!protocol/)|webview/)' }),
    forbid('engine-only-protocol', 'The engine knows nothing of its hosts (runtime, extension, CLI, panel).', { path: '^src/engine/' }, { path: '^(src/(extension|runtime|cli)|webview)/' }),
    forbid(
      'extension-engine-host-only',
      'The extension host may use only the part of the engine that loads no onnxruntime: engine/host.ts and engine/paths.ts.',
      { path: '^src/extension/' },
      { path: '^src/engine/', pathNot: '^src/engine/(host|paths)\\.ts$' },
    ),
    forbid(
      'extension-runtime-client-store-only',
      'The extension talks to the runtime process through its client, and uses the model store and the hardware probes; never the process code.',
      { path: '^src/extension/' },
      { path: '^src/runtime/', pathNot: '^src/runtime/((client|store)/|framing\\.ts$|probes\\.ts$)' },
    ),
    forbid(
      'no-inference-in-extension-host',
      'The extension host never loads an inference library (a native crash would take the editor down).',
      { path: '^(src/(extension|protocol|runtime/(client|store))/|webview/|src/runtime/probes\\.ts$)' },
      { path: INFERENCE },
    ),
    forbid(
      'engine-host-loads-no-inference',
      'engine/host.ts and engine/paths.ts are what the extension host loads: nothing they reach may load onnxruntime.',
      { path: '^src/engine/(host|paths)\\.ts$' },
      { path: INFERENCE, reachable: true },
    ),
    forbid(
      'runtime-engine-entry-only',
      'The runtime uses the engine through its entry points (engine/index.ts; host.ts and paths.ts where the extension host loads the module too).',
      { path: '^src/runtime/' },
      { path: '^src/engine/', pathNot: '^src/engine/(index|host|paths)\\.ts$' },
    ),
    forbid('runtime-below-hosts', 'The runtime knows nothing of the extension, the CLI or the panel.', { path: '^src/runtime/' }, { path: '^(src/(extension|cli)|webview)/' }),
    forbid('runtime-process-no-store', 'The model store belongs to the extension host and the CLI, never the runtime process.', { path: '^src/runtime/process/' }, { path: '^src/runtime/store/' }),
    forbid('runtime-client-store-no-process', 'The client and the store run in the extension host: they spawn the process, never import it.', { path: '^src/runtime/(client|store)/' }, { path: '^src/runtime/process/' }),
    forbid('cli-engine-entry-only', 'The CLI uses the engine through engine/index.ts (and engine/paths.ts).', { path: '^src/cli/' }, { path: '^src/engine/', pathNot: '^src/engine/(index|paths)\\.ts$' }),
    forbid('cli-no-editor', 'The CLI runs without VS Code.', { path: '^src/cli/' }, { path: '^(src/extension|webview)/' }),

    // Inside the engine: chain -> links, tokenizer -> model -> onnx, all over the foundation modules.
    forbid('engine-foundation-stands-alone', 'api, paths, dtype, tensor, safe-path and random are what every engine folder builds on.', { path: ENGINE_FOUNDATION }, { path: '^src/engine/', pathNot: ENGINE_FOUNDATION }),
    forbid('engine-entry-points-on-top', 'Nothing inside the engine imports its entry points.', { path: '^src/engine/[^/]+/' }, { path: '^src/engine/(index|host|text-generation)\\.ts$' }),
    forbid('onnx-bottom', 'onnx/ (graph builder, readers) uses nothing above it.', { path: '^src/engine/onnx/' }, { path: '^src/engine/(model|tokenizer|links|chain|verify)/' }),
    forbid('model-below-links-and-chain', 'model/ uses only onnx/ and the foundation.', { path: '^src/engine/model/' }, { path: '^src/engine/(tokenizer|links|chain|verify)/' }),
    forbid('tokenizer-below-chain', 'tokenizer/ may read model files, nothing above.', { path: '^src/engine/tokenizer/' }, { path: '^src/engine/(links|chain|verify)/' }),
    forbid('links-below-chain', 'links/ uses model/ and onnx/, never the chain that drives it.', { path: '^src/engine/links/' }, { path: '^src/engine/(tokenizer|chain|verify)/' }),
    forbid('chain-not-verify', 'The repair loop (verify/) drives the chain from outside; the chain does not know it.', { path: '^src/engine/chain/' }, { path: '^src/engine/verify/' }),
    forbid('verify-alone', 'verify/ runs checks on text; it needs no model.', { path: '^src/engine/verify/' }, { path: '^src/engine/(onnx|model|tokenizer|links|chain)/' }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
