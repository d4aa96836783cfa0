// The quickstart chat, driven through the official npm `spacetimedb` SDK and bindings made by our
// `spacetime generate --lang typescript`. Run (after bundling) as:
//   node chat_scenario.mjs <uri> <database> watcher <expected-messages>
//   node chat_scenario.mjs <uri> <database> sender <name> <message>...
// It prints one JSON object per line on stdout; the last one is {"event":"done","failures":[...]}.
// Anything the SDK reports as an error or warning (decoding failures, cache inconsistencies, rejected
// callbacks) is a failure, and so is any callback that sees something it should not.
import { DbConnection, type EventContext } from './module_bindings';
import { emit, fail, finish, watchSdk } from './harness';
import type { Identity } from 'spacetimedb';

const [uri, database, role, ...rest] = process.argv.slice(2);
watchSdk();

function eventTag(ctx: EventContext): string {
  return ctx.event.tag;
}

function reducerName(ctx: EventContext): string | undefined {
  return ctx.event.tag === 'Reducer' ? ctx.event.value.reducer.name : undefined;
}

type Connected = { conn: DbConnection; identity: Identity; token: string };

function connect(token?: string): Promise<Connected> {
  return new Promise((resolve, reject) => {
    DbConnection.builder()
      .withUri(uri)
      .withDatabaseName(database)
      .withToken(token)
      .onConnect((conn, identity, newToken) => resolve({ conn, identity, token: newToken }))
      .onConnectError((_ctx, error) => {
        fail(`connect error: ${error}`);
        reject(error);
      })
      .onDisconnect((_ctx, error) => {
        if (error) fail(`disconnected with error: ${error}`);
      })
      .build();
  });
}

function subscribeChat(conn: DbConnection): Promise<void> {
  return new Promise(resolve => {
    conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError(ctx => fail(`subscription error: ${ctx.event}`))
      .subscribe(['SELECT * FROM user', 'SELECT * FROM message']);
  });
}

async function watcher(expectedMessages: number): Promise<void> {
  const { conn, identity } = await connect();
  emit('connected', { identity: identity.toHexString() });
  let messages = 0;
  let named = false;
  const maybeDone = () => {
    if (messages >= expectedMessages && named) {
      conn.disconnect();
      setTimeout(finish, 50);
    }
  };
  conn.db.message.onInsert((ctx, message) => {
    messages += 1;
    const sender = conn.db.user.identity.find(message.sender);
    emit('message', {
      text: message.text,
      sender: message.sender.toHexString(),
      senderName: sender?.name ?? null,
      sent: message.sent.microsSinceUnixEpoch.toString(),
      tag: eventTag(ctx),
    });
    maybeDone();
  });
  conn.db.user.onInsert((ctx, user) =>
    emit('user_insert', { identity: user.identity.toHexString(), name: user.name ?? null, tag: eventTag(ctx) })
  );
  conn.db.user.onUpdate((ctx, before, after) => {
    emit('user_update', {
      identity: after.identity.toHexString(),
      before: before.name ?? null,
      after: after.name ?? null,
      online: after.online,
      tag: eventTag(ctx),
    });
    if (after.name) named = true;
    maybeDone();
  });
  await subscribeChat(conn);
  emit('applied', {
    users: Number(conn.db.user.count()),
    messages: Number(conn.db.message.count()),
    selfOnline: conn.db.user.identity.find(identity)?.online ?? null,
  });
}

async function sender(name: string, texts: string[]): Promise<void> {
  const first = await connect();
  const { conn, identity } = first;
  emit('connected', { identity: identity.toHexString() });
  const seen: Record<string, unknown>[] = [];
  conn.db.message.onInsert((ctx, message) => {
    seen.push({ text: message.text, tag: eventTag(ctx), reducer: reducerName(ctx) });
    if (!message.sender.isEqual(identity)) fail(`a message from someone else: ${message.text}`);
  });
  conn.db.user.onUpdate((ctx, before, after) => {
    if (after.identity.isEqual(identity)) {
      emit('own_user_update', { before: before.name ?? null, after: after.name ?? null, tag: eventTag(ctx), reducer: reducerName(ctx) });
    }
  });
  await subscribeChat(conn);
  emit('applied', { users: Number(conn.db.user.count()) });

  await conn.reducers.setName({ name });
  emit('name_set', { cached: conn.db.user.identity.find(identity)?.name ?? null });
  for (const text of texts) {
    await conn.reducers.sendMessage({ text });
  }
  emit('messages_sent', { seen, cached: [...conn.db.message.iter()].map(m => m.text) });

  try {
    await conn.reducers.setName({ name: '' });
    fail('set_name("") was accepted');
  } catch (error) {
    emit('reducer_error', { kind: (error as Error).constructor.name, message: (error as Error).message });
  }
  conn.disconnect();

  // Reconnect with the token we were given: the SDK exchanges it for a short-lived one first.
  const again = await connect(first.token);
  emit('reconnected', { identity: again.identity.toHexString(), same: again.identity.isEqual(identity) });
  await subscribeChat(again.conn);
  const me = again.conn.db.user.identity.find(again.identity);
  emit('reapplied', { name: me?.name ?? null, messages: Number(again.conn.db.message.count()) });
  again.conn.disconnect();
  setTimeout(finish, 50);
}

if (role === 'watcher') {
  watcher(Number(rest[0])).catch(error => {
    fail(`watcher failed: ${error?.stack ?? error}`);
    finish();
  });
} else if (role === 'sender') {
  sender(rest[0], rest.slice(1)).catch(error => {
    fail(`sender failed: ${error?.stack ?? error}`);
    finish();
  });
} else {
  fail(`unknown role ${role}`);
  finish();
}
