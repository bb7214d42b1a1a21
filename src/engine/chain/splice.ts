// Hand-off injection (spec section 4): render the receiver's chat template, split the text at the
// slot markers, tokenize each part without adding special tokens, embed, and put the incoming
// vectors in between: [prefix ; M ; suffix].
import { UserError } from '../api';
import type { EmbeddingTable } from '../model/embedding';
import type { TextTokenizer } from '../tokenizer/types';
import { slotMarker } from './prompts';

/** What one slot receives: latent vectors (count x receiver width) or a text message. */
export type SlotContent = { vectors: Float32Array; count: number } | { text: string };

export interface SplicedPrompt {
  embeds: Float32Array;
  count: number;
  /** Token ids of the text parts, in order (for tests and metrics). */
  textParts: number[][];
}

export function splicePrompt(rendered: string, slots: SlotContent[], tokenizer: TextTokenizer, embedding: EmbeddingTable, who: string): SplicedPrompt {
  let text = rendered;
  slots.forEach((s, i) => {
    if ('text' in s) text = text.split(slotMarker(i)).join(s.text);
  });
  const pieces: Float32Array[] = [];
  const textParts: number[][] = [];
  let count = 0;
  slots.forEach((s, i) => {
    if (!('vectors' in s)) return;
    const at = text.indexOf(slotMarker(i));
    if (at < 0) {
      throw new UserError(`The prompt of ${who} has no slot marker ${slotMarker(i)} after rendering its chat template, so its incoming thoughts have nowhere to go. The model's chat template must keep the user message.`, 'bad-input');
    }
    const ids = tokenizer.encode(text.slice(0, at));
    textParts.push(ids);
    pieces.push(embedding.lookup(ids), s.vectors);
    count += ids.length + s.count;
    text = text.slice(at + slotMarker(i).length);
  });
  const tail = tokenizer.encode(text);
  textParts.push(tail);
  pieces.push(embedding.lookup(tail));
  count += tail.length;
  const embeds = new Float32Array(count * embedding.width);
  let offset = 0;
  for (const p of pieces) {
    embeds.set(p, offset);
    offset += p.length;
  }
  return { embeds, count, textParts };
}
