// The smallest useful ONNX model: a provider that runs it and computes y = x + 1 right can run ours.
import { DataType, GraphBuilder } from './graph';

/** A one-node graph (y = x + 1, x and y float32 [1, 4]), serialized. */
export function providerProbeModel(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', DataType.FLOAT, [1, 4]);
  g.bindOutput(g.op('Add', [x, g.constF32([1, 1, 1, 1], [1, 4])]), 'y', DataType.FLOAT, [1, 4]);
  return g.finish('webgpu_probe');
}
