// Type-checked only (tsc --strict), never run: the generated bindings of a table whose index accessors
// collide with the SDK's table handle (`count`, `iter`, `insert`, `delete`) keep the handle's own members,
// and expose those indexes under their renamed accessors (`countIndex`, ...).
import { DbConnection } from './colliding_bindings';

export function readPlayers(conn: DbConnection): string[] {
  const player = conn.db.player;
  const total: bigint = player.count();
  const names: string[] = [...player.iter()].map(row => row.name);
  const ada = player.name.find('Ada');
  const byIndex = [...player.index.filter(1)].map(row => row.index);
  const byCount = [...player.countIndex.filter([1, 2])].map(row => row.count + row.iter);
  const byIter = [...player.iterIndex.filter(2)].length;
  const byInsert = [...player.insertIndex.filter([1, 2])].map(row => row.insert + row.delete);
  const byDelete = [...player.deleteIndex.filter(2)].length;
  player.onInsert((_ctx, row) => console.log(row.name));
  player.onDelete((_ctx, row) => console.log(row.name));
  return [String(total), ...names, ada?.name ?? '', String(byIndex), String(byCount), String(byIter),
    String(byInsert), String(byDelete)];
}
