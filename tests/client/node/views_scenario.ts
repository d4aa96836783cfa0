// Views through the official npm `spacetimedb` SDK and bindings made by our `spacetime generate --lang
// typescript`: two clients (alice, carol) subscribe to a per-caller view (`my_items`) and to anonymous views
// (`totals`, `expensive_items`), each adds an item, and both wait until their caches show the result; then alice
// changes her item's price, which `my_cheapest` (a view with a primary key) reports as an update.
//   node views_scenario.mjs <uri> <database>
// One JSON object per line on stdout: {"event":"insert"|"delete", who, view, name, owner} per view callback,
// {"event":"update", who, view, id, old, new} per update of my_cheapest (the prices before and after),
// {"event":"final", who, identity, mine, totals, expensive} per client, {"event":"failure", why} per failure, and {"event":"done", failures} last.
import { DbConnection } from './module_bindings';
import { emit, fail, finish, watchSdk } from './harness';
import type { Identity } from 'spacetimedb';

const [uri, database] = process.argv.slice(2);
watchSdk();

type Shopper = { who: string; conn: DbConnection; identity: Identity };

function connect(who: string): Promise<Shopper> {
  return new Promise((resolve, reject) => {
    DbConnection.builder()
      .withUri(uri)
      .withDatabaseName(database)
      .onConnect((conn, identity) => resolve({ who, conn, identity }))
      .onConnectError((_ctx, error) => {
        fail(`${who}: connect error: ${error}`);
        reject(error);
      })
      .build();
  });
}

function watch(shopper: Shopper): Promise<void> {
  const { who, conn } = shopper;
  conn.db.myItems.onInsert((_ctx, item) =>
    emit('insert', { who, view: 'myItems', name: item.name, owner: item.owner.toHexString() })
  );
  conn.db.myItems.onDelete((_ctx, item) =>
    emit('delete', { who, view: 'myItems', name: item.name, owner: item.owner.toHexString() })
  );
  conn.db.myCheapest.onUpdate((_ctx, before, after) => {
    updates.push(who);
    emit('update', { who, view: 'myCheapest', id: Number(after.id), old: before.price, new: after.price });
  });
  return new Promise(resolve => {
    conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError(ctx => fail(`${who}: subscription error: ${ctx.event}`))
      .subscribe([
        'SELECT * FROM my_items',
        'SELECT * FROM totals',
        'SELECT * FROM expensive_items',
        'SELECT * FROM my_cheapest',
      ]);
  });
}

const updates: string[] = []; // who saw an update of my_cheapest

function snapshot(shopper: Shopper): { mine: string[]; totals: number[]; expensive: string[] } {
  const db = shopper.conn.db;
  return {
    mine: [...db.myItems.iter()].map(item => item.name).sort(),
    totals: [...db.totals.iter()].flatMap(t => [Number(t.count), Number(t.total)]),
    expensive: [...db.expensiveItems.iter()].map(item => item.name).sort(),
  };
}

async function settled(shopper: Shopper, done: (s: ReturnType<typeof snapshot>) => boolean): Promise<void> {
  while (!done(snapshot(shopper))) await new Promise(resolve => setTimeout(resolve, 20));
}

async function main(): Promise<void> {
  const alice = await connect('alice');
  const carol = await connect('carol');
  await watch(alice);
  await watch(carol);
  await alice.conn.reducers.addItem({ name: 'ts-apple', price: 2 });
  await carol.conn.reducers.addItem({ name: 'ts-cherry', price: 300 });
  for (const shopper of [alice, carol]) {
    await settled(shopper, s => s.totals[0] === 2 && s.expensive.length === 1 && s.mine.length === 1);
  }
  const [apple] = [...alice.conn.db.myItems.iter()];
  await alice.conn.reducers.setPrice({ itemId: apple.id, price: 3 });
  await settled(alice, () => updates.includes('alice'));
  for (const shopper of [alice, carol]) {
    await settled(shopper, s => s.totals[1] === 3 + 300);
    emit('final', { who: shopper.who, identity: shopper.identity.toHexString(), ...snapshot(shopper) });
    shopper.conn.disconnect();
  }
  setTimeout(finish, 50);
}

main().catch(error => {
  fail(`scenario failed: ${error?.stack ?? error}`);
  finish();
});
