// Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
// and chat templates through @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { join } from 'node:path';
import { UserError } from '../api';
import { readJsonFile } from '../model/hf';
import type { TextTokenizer } from './types';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

export class HfTokenizer implements TextTokenizer {
  readonly bosId?: number;
  readonly eosIds: number[];
  readonly vocabSize: number;
  private readonly template?: Template;
  private readonly bosToken?: string;
  private readonly eosToken?: string;

  private constructor(
    private readonly tokenizer: Tokenizer,
    config: Record<string, unknown>,
    source: string,
  ) {
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.bosId = this.bosToken ? tokenizer.token_to_id(this.bosToken) : undefined;
    const eos = this.eosToken ? tokenizer.token_to_id(this.eosToken) : undefined;
    this.eosIds = eos === undefined ? [] : [eos];
    // Chat models end a turn with their own marker besides eos.
    for (const marker of ['<|im_end|>', '<|eot_id|>', '<|endoftext|>', '</s>', '<end_of_turn>']) {
      const id = tokenizer.token_to_id(marker);
      if (id !== undefined && !this.eosIds.includes(id)) this.eosIds.push(id);
    }
    this.vocabSize = tokenizer.get_vocab(true).size;
    const chatTemplate = config.chat_template;
    if (typeof chatTemplate === 'string') {
      try {
        this.template = new Template(chatTemplate);
      } catch (e) {
        throw new UserError(`${source}: the chat template does not parse (${(e as Error).message}).`, 'model-invalid');
      }
    }
  }

  static async load(folder: string): Promise<HfTokenizer> {
    const json = await readJsonFile(join(folder, 'tokenizer.json'), 'the tokenizer');
    const config = await readJsonFile(join(folder, 'tokenizer_config.json'), 'the tokenizer configuration').catch(() => ({}));
    try {
      return new HfTokenizer(new Tokenizer(json, config), config, folder);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${folder}/tokenizer.json could not be loaded: ${(e as Error).message}.`, 'model-invalid');
    }
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Encodes with the tokenizer's post-processor (e.g. Llama 3 adds <|begin_of_text|>). */
  encodeWithSpecialTokens(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: true }).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** Renders the chat template with a generation prompt and thinking disabled. */
  renderChat(messages: ChatMessage[]): string {
    if (!this.template) {
      return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant: ';
    }
    return this.template.render({
      messages,
      add_generation_prompt: true,
      enable_thinking: false,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }
}
