import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
