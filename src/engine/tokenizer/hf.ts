// Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
// and chat templates through @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { readFile } from 'node:fs/promises';
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
    private readonly source: string,
    chatTemplate: string | undefined,
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
    if (chatTemplate !== undefined) {
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
    const chatTemplate = await readChatTemplate(folder, config);
    try {
      return new HfTokenizer(new Tokenizer(json, config), config, folder, chatTemplate);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${folder}/tokenizer.json is not a tokenizer this version can read (${(e as Error).message.split('\n')[0]}). Download the model again; if this repeats, the model's tokenizer format is not supported.`, 'model-invalid');
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

  /** Refuses a tokenizer without a chat template, naming where one was looked for. */
  requireChatTemplate(): void {
    if (!this.template) {
      throw new UserError(
        `${this.source} has no chat template (looked for chat_template.jinja, chat_template.json and the "chat_template" key of tokenizer_config.json), so its agent's prompt cannot be built as the model was trained. The download may be incomplete: pull the model again.`,
        'model-invalid',
      );
    }
  }

  /**
   * Renders the chat template with a generation prompt and thinking disabled. A template that
   * rejects a system turn ("roles must alternate", as Mistral's does) gets the system text merged
   * into the first user message, as the released inference code does.
   */
  renderChat(messages: ChatMessage[]): string {
    this.requireChatTemplate();
    const render = (m: ChatMessage[]) =>
      this.template!.render({ messages: m, add_generation_prompt: true, enable_thinking: false, bos_token: this.bosToken ?? '', eos_token: this.eosToken ?? '' });
    try {
      return render(messages);
    } catch (e) {
      if (!/roles must alternate/i.test((e as Error).message) || !messages.some((m) => m.role === 'system')) {
        throw new UserError(`${this.source}: the chat template failed to render (${(e as Error).message}).`, 'model-invalid');
      }
      return render(mergeSystemIntoUser(messages));
    }
  }
}

function mergeSystemIntoUser(messages: ChatMessage[]): ChatMessage[] {
  const system = messages.filter((m) => m.role === 'system' && m.content).map((m) => m.content);
  const rest = messages.filter((m) => m.role !== 'system');
  const first = rest.findIndex((m) => m.role === 'user');
  if (first < 0) return [{ role: 'user', content: system.join('\n\n') }, ...rest];
  return rest.map((m, i) => (i === first ? { role: 'user', content: [...system, m.content].join('\n\n') } : m));
}

/**
 * The chat template, wherever transformers saved it: chat_template.jinja (transformers 5),
 * chat_template.json ({"chat_template": ...}), or tokenizer_config.json's "chat_template" (a string,
 * or a list of named templates of which "default" is the chat one).
 */
async function readChatTemplate(folder: string, config: Record<string, unknown>): Promise<string | undefined> {
  const jinja = await readFile(join(folder, 'chat_template.jinja'), 'utf8').catch(() => undefined);
  if (jinja !== undefined) return jinja;
  const json = await readJsonFile(join(folder, 'chat_template.json'), 'the chat template').catch((e: unknown) => {
    if (e instanceof UserError && e.code === 'model-invalid') throw e;
    return undefined;
  });
  const fromJson = json ? pickTemplate(json.chat_template, join(folder, 'chat_template.json')) : undefined;
  return fromJson ?? pickTemplate(config.chat_template, join(folder, 'tokenizer_config.json'));
}

function isNamedTemplate(t: unknown): t is { name: string; template: string } {
  if (typeof t !== 'object' || t === null) return false;
  const entry = t as Record<string, unknown>;
  return typeof entry.name === 'string' && typeof entry.template === 'string';
}

function pickTemplate(value: unknown, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = (value as unknown[]).filter(isNamedTemplate);
    const chosen = named.find((t) => t.name === 'default') ?? (named.length === 1 ? named[0] : undefined);
    if (chosen) return chosen.template;
  }
  throw new UserError(`${source}: "chat_template" is neither a template nor a list of named templates with a "default".`, 'model-invalid');
}
