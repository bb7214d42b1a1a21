// One llamaSpeed measurement in a process of its own, for bench/decode.ts: prints its result as
// one JSON line. Arguments: <gguf path> <prompt tokens> <new tokens> <threads>.
import { disposeLlama, llamaSpeed } from '../test/support/llamacpp';

const [gguf, promptTokens, newTokens, threads] = process.argv.slice(2);
const speed = await llamaSpeed(gguf!, { promptTokens: Number(promptTokens), newTokens: Number(newTokens), threads: Number(threads) });
await disposeLlama();
console.log(JSON.stringify(speed));
