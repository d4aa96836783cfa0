// Procedures and event tables through the official npm `spacetimedb` SDK and bindings made by our
// `spacetime generate --lang typescript`. Run (after bundling) as:
//   node procedures_scenario.mjs <uri> <database> <quote-url>
// It prints one JSON object per line on stdout; the last one is {"event":"done","failures":[...]}.
import { DbConnection } from './module_bindings';
import { emit, fail, finish, watchSdk } from './harness';

const [uri, database, quoteUrl] = process.argv.slice(2);
watchSdk();

function until(check: () => boolean): Promise<void> {
  return new Promise(resolve => {
    const poll = () => (check() ? resolve() : setTimeout(poll, 20));
    poll();
  });
}

async function main(): Promise<void> {
  const conn = await new Promise<DbConnection>((resolve, reject) => {
    DbConnection.builder()
      .withUri(uri)
      .withDatabaseName(database)
      .onConnect(c => resolve(c))
      .onConnectError((_ctx, error) => reject(error))
      .build();
  });
  const quotes: string[] = [];
  const damage: number[] = [];
  conn.db.quote.onInsert((_ctx, row) => quotes.push(row.text));
  conn.db.damage.onInsert((_ctx, row) => damage.push(row.amount));
  await new Promise<void>(resolve => {
    conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError(ctx => fail(`subscription error: ${ctx.event}`))
      .subscribe(['SELECT * FROM quote', 'SELECT * FROM damage']);
  });
  const sum = await conn.procedures.addTwo({ lhs: 40, rhs: 2 });
  emit('add_two', { value: sum });
  const fetched = await conn.procedures.fetchQuote({ url: quoteUrl });
  emit('fetch_quote', { value: fetched });
  try {
    await conn.procedures.crash({});
    fail('crash() returned');
  } catch (error) {
    emit('procedure_error', { message: String((error as Error).message ?? error) });
  }
  await conn.reducers.hit({ target: conn.identity!, amount: 9 });
  await until(() => quotes.length >= 1 && damage.length >= 1);
  emit('rows', { quotes, damage, damageCached: Number(conn.db.damage.count()), quotesCached: Number(conn.db.quote.count()) });
  conn.disconnect();
  setTimeout(finish, 50);
}

main().catch(error => {
  fail(`scenario failed: ${error?.stack ?? error}`);
  finish();
});
