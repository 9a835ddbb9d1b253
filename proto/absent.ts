/**
 * Reading a path that may not be there: `fs.promises.x(path).catch(absentIfMissing)`
 * is undefined when the path (or a directory on the way) does not exist, and
 * throws any other error (EACCES, EIO, ...), which is never read as absent.
 * It lives in proto/ because every side uses it and proto/ is the folder
 * they all may import.
 */
export function absentIfMissing(err: unknown): undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  throw err;
}
