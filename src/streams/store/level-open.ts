/**
 * Opening the LevelDB database of a data dir, with every way it can fail turned into a
 * {@link StoreOpenError} whose message names the directory and says what to do.
 *
 * The directory is created when missing. A directory without a LevelDB `CURRENT` file is a new store
 * only when it holds nothing else (a `lost+found`, dotfiles, and the LOCK/LOG files of a create that
 * was interrupted are allowed): LevelDB would otherwise start an empty database next to whatever is
 * there, and a mistyped `--data-dir` or a store whose CURRENT was lost would silently start empty.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { StoreOpenError } from '../types.js';
import { FORMAT, FORMAT_KEY, type StreamDb } from './level-format.js';

/** Names a directory without a CURRENT file may hold and still be taken as new. */
const HARMLESS = /^(lost\+found|\..*|LOCK|LOG|LOG\.old)$/;

/** Opens (creating when new) the stream database in `dir`; throws StoreOpenError. */
export async function openStreamDb(dir: string): Promise<StreamDb> {
  let names: string[];
  try {
    await mkdir(dir, { recursive: true });
    names = await readdir(dir);
  } catch (err) {
    throw openError(err, dir);
  }
  if (!names.includes('CURRENT')) {
    const other = names.filter((n) => !HARMLESS.test(n));
    if (other.length > 0) {
      throw new StoreOpenError(
        'corrupt',
        `data dir ${dir} is not a chatmesh store: it holds ${other.slice(0, 3).join(', ')}${other.length > 3 ? ', …' : ''} but no LevelDB CURRENT file; point --data-dir at an empty directory or at a store a node wrote (if it is one whose CURRENT file was lost, restore it from a backup)`,
      );
    }
  }
  const db: StreamDb = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  try {
    await db.open({ createIfMissing: true });
  } catch (err) {
    throw openError(err, dir);
  }
  try {
    await checkFormat(db, dir);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err instanceof StoreOpenError ? err : openError(err, dir);
  }
  return db;
}

/** Writes the format marker into a new (empty) database; refuses one of another layout. */
async function checkFormat(db: StreamDb, dir: string): Promise<void> {
  const format = await db.get(FORMAT_KEY);
  if (format === FORMAT) return;
  if (format !== undefined) {
    throw new StoreOpenError('corrupt', `data dir ${dir} holds a chatmesh store of format ${JSON.stringify(format)}, this node reads ${FORMAT}: run the version that wrote it, or use another --data-dir`);
  }
  const [anyKey] = await db.keys({ limit: 1 }).all();
  if (anyKey !== undefined) {
    throw new StoreOpenError('corrupt', `data dir ${dir} holds a LevelDB database that is not a chatmesh store (no format marker): use another --data-dir`);
  }
  await db.put(FORMAT_KEY, FORMAT, { sync: true });
}

/** The StoreOpenError for a failure to open `dir` (a classic-level error, or one of node:fs). */
export function openError(err: unknown, dir: string): StoreOpenError {
  const outer = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const cause = outer?.code === 'LEVEL_DATABASE_NOT_OPEN' && outer.cause ? outer.cause : outer;
  const code = cause?.code ?? '';
  const detail = cause?.message ?? String(err);
  if (code === 'LEVEL_LOCKED') {
    return new StoreOpenError('locked', `data dir ${dir} is locked by another running node (or another store of this process): stop it or use another --data-dir`, { cause: err });
  }
  if (code === 'LEVEL_CORRUPTION') {
    return new StoreOpenError('corrupt', `data dir ${dir} holds a damaged store (${detail}): restore it from a backup, or move it away and start with an empty one (the other replicas hand the streams back)`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || /Permission denied|Read-only file system/.test(detail)) {
    return new StoreOpenError('permission', `data dir ${dir} cannot be read and written by this process (${detail}): fix its owner or mode, or use another --data-dir`, { cause: err });
  }
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    return new StoreOpenError('other', `data dir ${dir} is not a directory (${detail}): use another --data-dir`, { cause: err });
  }
  return new StoreOpenError('other', `could not open data dir ${dir} (${detail})`, { cause: err });
}
