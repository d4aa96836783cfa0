// A chat page on the official `spacetimedb` SDK, with bindings made by `spacetime generate --lang typescript`
// from examples/chat/quickstart_chat.py. It keeps its token in localStorage, so a reload (or a dropped
// connection) comes back as the same identity, with the same name.
import type { Identity } from 'spacetimedb';
import { DbConnection, type ErrorContext } from './module_bindings';
import type { Message, User } from './module_bindings/types';

const SERVER_URI: string = import.meta.env.VITE_SPACETIMEDB_URI ?? 'http://127.0.0.1:3000';
const DATABASE: string = import.meta.env.VITE_SPACETIMEDB_DATABASE ?? 'quickstart-chat';
const TOKEN_KEY = `spacetimedb-web-chat:${SERVER_URI}:${DATABASE}:token`;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000];

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const statusLine = element<HTMLParagraphElement>('status');
const identityLine = element<HTMLParagraphElement>('identity');
const errorLine = element<HTMLParagraphElement>('error');
const messageList = element<HTMLOListElement>('messages');
const nameForm = element<HTMLFormElement>('name-form');
const nameInput = element<HTMLInputElement>('name-input');
const messageForm = element<HTMLFormElement>('message-form');
const messageInput = element<HTMLInputElement>('message-input');

let connection: DbConnection | undefined;
let self: Identity | undefined;
let failedAttempts = 0;

function setStatus(state: 'connecting' | 'connected' | 'disconnected', text: string): void {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function showError(text: string): void {
  errorLine.textContent = text;
}

function setEnabled(enabled: boolean): void {
  for (const control of document.querySelectorAll<HTMLInputElement | HTMLButtonElement>('form input, form button')) {
    control.disabled = !enabled;
  }
}

function displayName(conn: DbConnection, identity: Identity): string {
  const user: User | null = conn.db.user.identity.find(identity);
  return user?.name ?? identity.toHexString().slice(0, 8);
}

function render(): void {
  const conn = connection;
  if (!conn) return;
  const messages: Message[] = [...conn.db.message.iter()].sort((a, b) =>
    a.sent.microsSinceUnixEpoch < b.sent.microsSinceUnixEpoch ? -1 : a.sent.microsSinceUnixEpoch > b.sent.microsSinceUnixEpoch ? 1 : 0
  );
  messageList.replaceChildren(
    ...messages.map(message => {
      const item = document.createElement('li');
      const sender = document.createElement('span');
      sender.className = 'sender';
      sender.textContent = displayName(conn, message.sender);
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = message.text;
      item.dataset.sender = message.sender.toHexString();
      if (self && message.sender.isEqual(self)) item.classList.add('mine');
      item.append(sender, text);
      return item;
    })
  );
  messageList.scrollTop = messageList.scrollHeight;
  if (self) {
    const name = conn.db.user.identity.find(self)?.name;
    setStatus('connected', name ? `Connected as ${name}` : 'Connected (no name yet)');
    if (name && document.activeElement !== nameInput && !nameInput.value) nameInput.placeholder = name;
  }
}

function connect(): void {
  const saved = localStorage.getItem(TOKEN_KEY) ?? undefined;
  setStatus('connecting', 'Connecting…');
  DbConnection.builder()
    .withUri(SERVER_URI)
    .withDatabaseName(DATABASE)
    .withToken(saved)
    .onConnect((conn, identity, token) => {
      connection = conn;
      self = identity;
      failedAttempts = 0;
      localStorage.setItem(TOKEN_KEY, token);
      identityLine.textContent = identity.toHexString();
      showError('');
      conn.db.message.onInsert(render);
      conn.db.user.onInsert(render);
      conn.db.user.onUpdate(render);
      conn
        .subscriptionBuilder()
        .onApplied(() => {
          setEnabled(true);
          render();
        })
        .onError((ctx: ErrorContext) => showError(`Subscription failed: ${ctx.event ?? 'unknown error'}`))
        .subscribe(['SELECT * FROM user', 'SELECT * FROM message']);
    })
    .onConnectError((_ctx: ErrorContext, error: Error) => {
      if (saved !== undefined && failedAttempts === 0) {
        // the server may have been wiped, and with it the key that signed our token: start afresh
        localStorage.removeItem(TOKEN_KEY);
      }
      showError(`Could not connect to ${SERVER_URI}: ${error.message}`);
      scheduleReconnect();
    })
    .onDisconnect((_ctx: ErrorContext, error?: Error) => {
      setEnabled(false);
      setStatus('disconnected', 'Disconnected, reconnecting…');
      if (error) showError(`Connection lost: ${error.message}`);
      connection = undefined;
      scheduleReconnect();
    })
    .build();
}

function scheduleReconnect(): void {
  const delay = RECONNECT_DELAYS_MS[Math.min(failedAttempts, RECONNECT_DELAYS_MS.length - 1)];
  failedAttempts += 1;
  setTimeout(connect, delay);
}

function reportFailure(what: string): (error: unknown) => void {
  return error => showError(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
}

nameForm.addEventListener('submit', event => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (!connection || !name) return;
  showError('');
  connection.reducers.setName({ name }).then(() => {
    nameInput.value = '';
    nameInput.placeholder = name;
  }, reportFailure('Setting your name'));
});

messageForm.addEventListener('submit', event => {
  event.preventDefault();
  const text = messageInput.value;
  if (!connection || !text.trim()) return;
  showError('');
  messageInput.value = '';
  connection.reducers.sendMessage({ text }).catch(reportFailure('Sending'));
});

connect();
