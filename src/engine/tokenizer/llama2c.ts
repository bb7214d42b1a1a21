// llama2.c's tokenizer (tokenizer.bin): byte-exact with run.c's encode() and decode().
import { readFile } from 'node:fs/promises';
import { UserError } from '../api';
import type { TextTokenizer } from './types';

const BOS = 1;

export class Llama2cTokenizer implements TextTokenizer {
  readonly bosId = BOS;
  readonly eosIds = [2];
  /** Token strings as latin1 strings of their raw bytes, so lookups compare bytes. */
  private readonly pieces: string[];
  private readonly scores: Float32Array;
  private readonly ids = new Map<string, number>();

  private constructor(pieces: string[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    pieces.forEach((p, i) => {
      if (!this.ids.has(p)) this.ids.set(p, i);
    });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  static async load(path: string, vocabSize: number): Promise<Llama2cTokenizer> {
    const buf = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`Cannot read the tokenizer ${path}: ${e.code ?? e.message}.`, 'model-missing');
    });
    const bad = (what: string) => new UserError(`${path} is not a llama2.c tokenizer for a ${vocabSize}-token model: ${what}. Pass the tokenizer that belongs to this model (--tokenizer).`, 'model-invalid');
    if (buf.length < 4) throw bad('too short');
    let at = 4; // max_token_length, unused
    const pieces: string[] = [];
    const scores = new Float32Array(vocabSize);
    for (let i = 0; i < vocabSize; i++) {
      if (at + 8 > buf.length) throw bad(`it ends after ${i} tokens`);
      scores[i] = buf.readFloatLE(at);
      const len = buf.readInt32LE(at + 4);
      at += 8;
      if (len < 0 || at + len > buf.length) throw bad(`token ${i} has an invalid length ${len}`);
      pieces.push(buf.toString('latin1', at, at + len));
      at += len;
    }
    if (at !== buf.length) throw bad(`${buf.length - at} bytes are left after ${vocabSize} tokens (it belongs to a larger vocabulary)`);
    return new Llama2cTokenizer(pieces, scores);
  }

  /** run.c's encode(text, bos, eos=0): BOS, a dummy-prefix space, UTF-8 code points (byte fallback), greedy merges. */
  encodeWithBos(text: string): number[] {
    return [BOS, ...this.encode(text)];
  }

  encode(text: string): number[] {
    const tokens: number[] = [];
    if (text.length === 0) return tokens;
    const space = this.ids.get(' ');
    if (space !== undefined) tokens.push(space);
    const bytes = Buffer.from(text, 'utf8');
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      // A code point is a lead byte plus its continuation bytes (at most 4 bytes in all).
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const piece = bytes.toString('latin1', start, end);
      const id = this.ids.get(piece);
      if (id !== undefined) tokens.push(id);
      else for (let i = start; i < end; i++) tokens.push(bytes[i]! + 3);
      start = end;
    }
    for (;;) {
      let bestScore = -1e10;
      let bestId = -1;
      let bestIndex = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.ids.get(this.pieces[tokens[i]!]! + this.pieces[tokens[i + 1]!]!);
        if (id !== undefined && this.scores[id]! > bestScore) {
          bestScore = this.scores[id]!;
          bestId = id;
          bestIndex = i;
        }
      }
      if (bestIndex === -1) break;
      tokens.splice(bestIndex, 2, bestId);
    }
    return tokens;
  }

  /** run.c's decode(prev, token): drops the leading space after BOS and maps <0xXX> to its byte. */
  pieceBytes(prev: number, token: number): Uint8Array {
    let piece = this.pieces[token] ?? '';
    if (prev === BOS && piece.startsWith(' ')) piece = piece.slice(1);
    const byte = /^<0x([0-9A-Fa-f]{1,2})/.exec(piece);
    if (byte) return Uint8Array.of(parseInt(byte[1]!, 16));
    return Buffer.from(piece, 'latin1');
  }

  /** run.c's safe_printf: a lone byte prints only if it is printable ASCII or whitespace. */
  static printable(piece: Uint8Array): Uint8Array {
    if (piece.length === 1) {
      const b = piece[0]!;
      const ok = (b >= 0x20 && b <= 0x7e) || (b >= 0x09 && b <= 0x0d);
      return ok ? piece : new Uint8Array(0);
    }
    return piece;
  }

  decode(ids: readonly number[]): string {
    return Buffer.concat(ids.map((id, i) => this.pieceBytes(i === 0 ? -1 : ids[i - 1]!, id))).toString('utf8');
  }
}
