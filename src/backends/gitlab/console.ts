const RULE = `remote: ${'='.repeat(72)}`;

/** An error boxed as gitlab-sshd boxes it, so users and scripts see the same text. */
export function formatGitlabError(message: string): string {
  return ['remote: ', RULE, 'remote: ', `remote: ERROR: ${message}`, '', 'remote: ', RULE, 'remote: ', ''].join('\n');
}
