// Identifiers shared by the manifest (package.json) and the code that registers them.
export const EXTENSION_ID = 'recursivemas.recursivemas';
export const PANEL_VIEW_TYPE = 'recursivemas.panel';
export const PANEL_TITLE = 'RecursiveMAS';
/** URI scheme of the read-only documents that hold proposed code for the diff view. */
export const PROPOSAL_SCHEME = 'recursivemas-proposal';
/** The chat participant (`@recursivemas` in VS Code's chat) and the vendor of the team as a language model. */
export const CHAT_PARTICIPANT_ID = 'recursivemas.team';
export const CHAT_PARTICIPANT_NAME = 'recursivemas';
export const LANGUAGE_MODEL_VENDOR = 'recursivemas';

export const Commands = {
  solve: 'recursivemas.solve',
  cancel: 'recursivemas.cancel',
  selectTeam: 'recursivemas.selectTeam',
  downloadModels: 'recursivemas.downloadModels',
  showLogs: 'recursivemas.showLogs',
  showPanel: 'recursivemas.showPanel',
  setToken: 'recursivemas.setHuggingFaceToken',
  acceptProposal: 'recursivemas.acceptProposal',
  discardProposal: 'recursivemas.discardProposal',
  checkMachine: 'recursivemas.checkMachine',
  downloadRecommendedTeam: 'recursivemas.downloadRecommendedTeam',
  tryDemo: 'recursivemas.tryDemo',
  showHistory: 'recursivemas.showHistory',
  installCuda: 'recursivemas.installCuda',
} as const;

/** Context keys the extension sets for `when` clauses. */
export const ContextKeys = {
  solving: 'recursivemas.solving',
  /** The active editor holds a live inline diff waiting for Accept or Discard. */
  liveDiff: 'recursivemas.liveDiff',
} as const;
