// What the engine needs from a tokenizer, whatever its format.
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosIds: number[];
  /** Token ids of text, without any special tokens added. */
  encode(text: string): number[];
  /**
   * Text of a run of ids; an incomplete UTF-8 character at the end shows as U+FFFD. With
   * `skipSpecialTokens`, control tokens such as <|im_start|> are left out (formats without any ignore it).
   */
  decode(ids: readonly number[], skipSpecialTokens?: boolean): string;
}

/**
 * Turns a stream of token ids into text without ever emitting half of a UTF-8 character: text is
 * decoded over a short window of recent tokens and held back while it ends in U+FFFD.
 */
export class TokenTextStream {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(
    private readonly tokenizer: TextTokenizer,
    /** Leave control tokens out of the text: what agents and users read is never chat markup. */
    private readonly skipSpecialTokens = false,
  ) {}

  private text(from: number, to?: number): string {
    return this.tokenizer.decode(this.ids.slice(from, to), this.skipSpecialTokens);
  }

  push(id: number): string {
    this.ids.push(id);
    const prefix = this.text(this.prefixOffset, this.readOffset);
    const text = this.text(this.prefixOffset);
    if (text.length > prefix.length && !text.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return text.slice(prefix.length);
    }
    return '';
  }

  /** Whatever is still held back (an incomplete character at the very end stays as U+FFFD). */
  flush(): string {
    const prefix = this.text(this.prefixOffset, this.readOffset);
    const text = this.text(this.prefixOffset);
    this.prefixOffset = this.readOffset = this.ids.length;
    return text.slice(prefix.length);
  }
}
