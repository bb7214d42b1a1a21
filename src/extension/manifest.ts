// The extension's part of package.json, as code: commands, menus, keybinding, settings (from
// settings.ts), activation and workspace-trust capabilities. `npx tsx src/extension/manifest.ts
// --write` sets exactly these keys in package.json and leaves every other key as it is;
// test/unit/settings.test.ts fails when package.json and this file disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { CHAT_PARTICIPANT_ID, CHAT_PARTICIPANT_NAME, Commands, ContextKeys, LANGUAGE_MODEL_VENDOR, PANEL_VIEW_TYPE, PROPOSAL_SCHEME } from './ids';
import { manifestProperties } from './settings';

const category = 'RecursiveMAS';

export function manifestKeys(): Record<string, unknown> {
  const commands = [
    { command: Commands.solve, title: 'Solve with RecursiveMAS', icon: '$(sparkle)' },
    { command: Commands.cancel, title: 'Cancel', category, icon: '$(debug-stop)', enablement: ContextKeys.solving },
    { command: Commands.selectTeam, title: 'Select Team', category },
    { command: Commands.downloadModels, title: 'Download Models', category },
    { command: Commands.showLogs, title: 'Show Logs', category },
    { command: Commands.showPanel, title: 'Show Panel', category },
    { command: Commands.setToken, title: 'Set Hugging Face Token', category },
    { command: Commands.acceptProposal, title: 'Accept Proposed Code', category, icon: '$(check)' },
    { command: Commands.discardProposal, title: 'Discard Proposed Code', category, icon: '$(discard)' },
    { command: Commands.checkMachine, title: 'Check This Machine', category },
    { command: Commands.downloadRecommendedTeam, title: 'Download the Recommended Team', category },
    { command: Commands.tryDemo, title: 'Start the Offline Demo', category },
    { command: Commands.showHistory, title: 'Show Solve History', category },
    { command: Commands.installCuda, title: 'Install CUDA Support', category },
  ];
  // The first hour: check the machine, get a team that fits or the offline demo, solve a task.
  const step = (id: string, title: string, description: string, completion: string) => ({ id, title, description, media: { markdown: `media/walkthrough/${id}.md` }, completionEvents: [completion] });
  const walkthroughs = [
    {
      id: 'firstRun',
      title: 'Get started with RecursiveMAS',
      description: 'Check this machine, get a team of local models that fits it (or the offline demo), and solve a first task.',
      steps: [
        step('checkMachine', 'Check this machine', `The models run on this computer. See its free memory, whether a GPU provider is found, and which team fits.\n[Check this machine](command:${Commands.checkMachine})`, `onCommand:${Commands.checkMachine}`),
        step('getTeam', 'Download a team that fits', `Real answers need a real team: a few GB, downloaded once from Hugging Face (or the mirror in the settings).\n[Download the recommended team](command:${Commands.downloadRecommendedTeam})\n[Choose another team](command:${Commands.selectTeam})`, `onCommand:${Commands.downloadRecommendedTeam}`),
        step('tryDemo', 'Or start the offline demo', `The demo team needs no download: it runs the whole team with generated weights, so it shows how a solve works but writes no useful code.\n[Start the offline demo](command:${Commands.tryDemo})`, `onCommand:${Commands.tryDemo}`),
        step('solve', 'Solve a task', `Select code or a comment that says what you need, then run "Solve with RecursiveMAS" (Ctrl+Alt+M). Nothing is written to your files until you insert, replace or accept the code.\n[Solve with RecursiveMAS](command:${Commands.solve})`, `onCommand:${Commands.solve}`),
      ],
    },
  ];
  const inProposalDiff = `isInDiffEditor && resourceScheme == ${PROPOSAL_SCHEME}`;
  // Accept and Discard also act on a live inline diff in the focused file.
  const proposalHere = `(${inProposalDiff}) || (editorTextFocus && ${ContextKeys.liveDiff})`;
  return {
    activationEvents: [
      ...Object.values(Commands).map((c) => `onCommand:${c}`),
      `onWebviewPanel:${PANEL_VIEW_TYPE}`,
      `onChatParticipant:${CHAT_PARTICIPANT_ID}`,
      `onLanguageModelChatProvider:${LANGUAGE_MODEL_VENDOR}`,
      // Activation is cheap (no runtime process starts); it puts the team and device in the status bar.
      'onStartupFinished',
    ],
    extensionKind: ['workspace'],
    capabilities: {
      untrustedWorkspaces: {
        supported: 'limited',
        description:
          'In an untrusted workspace RecursiveMAS does not solve tasks or download models: both load model files and run native inference code, and the workspace could point them at files you did not choose.',
        restrictedConfigurations: ['recursivemas.modelsDirectory', 'recursivemas.huggingFace.endpoint', 'recursivemas.team', 'recursivemas.verify.command'],
      },
    },
    icon: 'media/icon.png',
    categories: ['AI', 'Machine Learning', 'Programming Languages'],
    keywords: ['llm', 'agents', 'multi-agent', 'code generation', 'local', 'onnx', 'latent'],
    galleryBanner: { color: '#1b2433', theme: 'dark' },
    contributes: {
      commands,
      menus: {
        'editor/context': [{ command: Commands.solve, when: 'editorHasSelection && !isInDiffEditor', group: '1_modification@90' }],
        'editor/title': [
          { command: Commands.acceptProposal, when: inProposalDiff, group: 'navigation@1' },
          { command: Commands.discardProposal, when: inProposalDiff, group: 'navigation@2' },
        ],
        commandPalette: [
          { command: Commands.cancel, when: ContextKeys.solving },
          { command: Commands.acceptProposal, when: `(${inProposalDiff}) || ${ContextKeys.liveDiff}` },
          { command: Commands.discardProposal, when: `(${inProposalDiff}) || ${ContextKeys.liveDiff}` },
        ],
      },
      keybindings: [
        { command: Commands.solve, key: 'ctrl+alt+m', mac: 'cmd+alt+m', when: 'editorTextFocus' },
        { command: Commands.cancel, key: 'ctrl+alt+escape', mac: 'cmd+alt+escape', when: ContextKeys.solving },
        // In the proposal's diff: accept or discard without reaching for the title bar.
        { command: Commands.acceptProposal, key: 'ctrl+alt+enter', mac: 'cmd+alt+enter', when: proposalHere },
        { command: Commands.discardProposal, key: 'ctrl+alt+backspace', mac: 'cmd+alt+backspace', when: proposalHere },
      ],
      walkthroughs,
      // `@recursivemas` in VS Code's chat view, and the team as a model there (where VS Code offers the API).
      chatParticipants: [
        {
          id: CHAT_PARTICIPANT_ID,
          name: CHAT_PARTICIPANT_NAME,
          fullName: 'RecursiveMAS',
          description: 'Solve a coding task with your local team of agents',
          isSticky: true,
        },
      ],
      languageModelChatProviders: [{ vendor: LANGUAGE_MODEL_VENDOR, displayName: 'RecursiveMAS (local team)' }],
      configuration: {
        title: 'RecursiveMAS',
        properties: manifestProperties(),
      },
    },
  };
}

/** The npm scripts this part of the project owns. */
export const ownedScripts: Record<string, string> = {
  package: 'node scripts/package-vsix.mjs',
  'test:e2e': 'bash scripts/setup-e2e.sh && node scripts/test.mjs test/e2e/',
};

export function applyManifest(pkg: Record<string, unknown>): Record<string, unknown> {
  const out = { ...pkg, ...manifestKeys() };
  out.scripts = { ...(pkg.scripts as Record<string, string> | undefined), ...ownedScripts };
  return out;
}

if (process.argv[1]?.endsWith('manifest.ts') && process.argv.includes('--write')) {
  const file = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(applyManifest(pkg), null, 2) + '\n');
  console.log('package.json: contributes, activationEvents, extensionKind, capabilities, icon, categories, keywords, galleryBanner, scripts.package, scripts.test:e2e updated');
}
