export function line(text: string): Buffer {
  return Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
}
