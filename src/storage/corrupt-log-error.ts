// The one error recovery cannot repair by itself. A torn tail (the last, unsynced write cut
// short by a crash) is expected and repaired silently with a warning; this is everything
// else: a bad record with good records after it, or a broken segment that is not the last.

export class CorruptLogError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly problem: string,
    readonly dataDir: string,
    advice?: string,
  ) {
    super(advice !== undefined ? `Raft storage cannot be read: ${file} at byte offset ` +
      `${offset}: ${problem}. ${advice}` :
      `Raft storage is corrupt: ${file} at byte offset ${offset}: ${problem}. This is not ` +
      'a torn write from a crash, so acknowledged data may be damaged and the node refuses to ' +
      'start rather than serve a wrong log. Do not edit the file. Restore this replica from ' +
      `its peers: stop the node, move the data directory ${dataDir} aside (keep it for ` +
      'inspection) and start the node with an empty directory, so that it rejoins as a fresh ' +
      'member and receives a snapshot from the leader (a wiped voter has forgotten its vote: ' +
      'remove it from the group membership first unless the deployment does so itself). If ' +
      'every replica reports this, restore from a backup.');
    this.name = 'CorruptLogError';
  }
}
