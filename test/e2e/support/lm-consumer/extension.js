// Test tooling for test/e2e/chat.test.ts: the other side of the language model API. Its command
// selects the RecursiveMAS team through vscode.lm, sends it the task in `lm-task.txt`, streams the
// reply and writes it (or the error) to `lm-answer.txt` in the workspace, where the test reads it.
const vscode = require('vscode');

async function ask() {
  const root = vscode.workspace.workspaceFolders[0].uri;
  const write = (text) => vscode.workspace.fs.writeFile(vscode.Uri.joinPath(root, 'lm-answer.txt'), Buffer.from(text));
  try {
    const task = Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(root, 'lm-task.txt'))).toString('utf8');
    const models = await vscode.lm.selectChatModels({ vendor: 'recursivemas' });
    if (models.length === 0) throw new Error('no model of vendor recursivemas');
    const model = models[0];
    const reply = await model.sendRequest([vscode.LanguageModelChatMessage.User(task)], { justification: 'The e2e test asks the local team for code.' });
    let text = '';
    for await (const part of reply.text) text += part;
    await write(`MODEL ${model.name} (${model.id})\n${text}`);
  } catch (e) {
    await write(`ERROR ${e && e.message ? e.message : String(e)}`);
  }
}

exports.activate = (context) => {
  context.subscriptions.push(vscode.commands.registerCommand('lmConsumer.ask', ask));
};
