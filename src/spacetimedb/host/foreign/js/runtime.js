// The host side of a SpacetimeDB TypeScript module, inside its V8 isolate: the built-ins the module's library
// expects (TextEncoder, TextDecoder; no Math.random), the synthetic modules `spacetime:sys@2.0` and `@2.1`,
// and the dispatcher through which the host calls the module's hooks.
//
// Python and JS talk through one ArrayBuffer, the mailbox, and one synchronous host function (see engine.py
// for the layout and the op codes, which the constants below repeat). This script defines two globals,
// __stdb_mailbox and __stdb_boot; __stdb_boot(hostcall) deletes both and returns the dispatcher, so the
// module's own code never sees the raw channel.
"use strict";

(function () {
  // ---- UTF-8 TextEncoder / TextDecoder (bare V8 has neither) ----------------------------------------------
  function utf8Encode(str) {
    const out = new Uint8Array(str.length * 3);
    let n = 0;
    for (let i = 0; i < str.length; i++) {
      let c = str.charCodeAt(i);
      if (c < 0x80) {
        out[n++] = c;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        const d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate
      if (c < 0x800) {
        out[n++] = 0xc0 | (c >> 6);
        out[n++] = 0x80 | (c & 0x3f);
      } else if (c < 0x10000) {
        out[n++] = 0xe0 | (c >> 12);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
      } else {
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 0x3f);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
      }
    }
    return out.slice(0, n);
  }

  function asBytes(input) {
    if (input === undefined) return new Uint8Array(0);
    if (input instanceof Uint8Array) return input;
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    throw new TypeError("TextDecoder.decode: expected an ArrayBuffer or a view of one");
  }

  function utf8Decode(bytes, fatal, ignoreBOM) {
    let i = 0;
    if (!ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
    let out = "";
    let chunk = [];
    const bad = () => {
      if (fatal) throw new TypeError("TextDecoder: the data is not valid UTF-8");
      return 0xfffd;
    };
    while (i < bytes.length) {
      const b = bytes[i];
      let c;
      if (b < 0x80) {
        c = b;
        i += 1;
      } else {
        const need = b >= 0xf0 ? (b <= 0xf4 ? 3 : -1) : b >= 0xe0 ? 2 : b >= 0xc2 ? 1 : -1;
        if (need < 0 || i + need >= bytes.length) {
          c = bad();
          i += 1;
        } else {
          c = b & (0xff >> (need + 2));
          let ok = true;
          for (let k = 1; k <= need; k++) {
            const cont = bytes[i + k];
            if ((cont & 0xc0) !== 0x80) {
              ok = false;
              break;
            }
            c = (c << 6) | (cont & 0x3f);
          }
          const min = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
          if (!ok || c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            c = bad();
            i += 1;
          } else {
            i += need + 1;
          }
        }
      }
      if (c > 0xffff) {
        c -= 0x10000;
        chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
      } else {
        chunk.push(c);
      }
      if (chunk.length >= 8192) {
        out += String.fromCharCode.apply(null, chunk);
        chunk = [];
      }
    }
    return out + String.fromCharCode.apply(null, chunk);
  }

  function checkLabel(label) {
    const name = String(label).trim().toLowerCase();
    if (name !== "utf-8" && name !== "utf8" && name !== "unicode-1-1-utf-8") {
      throw new RangeError(`TextDecoder: only utf-8 is supported, not "${label}"`);
    }
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return utf8Encode(String(input));
    }
    encodeInto(input, dest) {
      const bytes = utf8Encode(String(input));
      // whole characters only: step back over a cut multi-byte sequence
      let written = Math.min(bytes.length, dest.length);
      while (written > 0 && written < bytes.length && (bytes[written] & 0xc0) === 0x80) written--;
      dest.set(bytes.subarray(0, written));
      const read = utf8Decode(bytes.subarray(0, written), false, true).length;
      return { read, written };
    }
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      checkLabel(label);
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input) {
      return utf8Decode(asBytes(input), this.#fatal, this.#ignoreBOM);
    }
  }

  Object.defineProperty(globalThis, "TextEncoder", { value: TextEncoder, writable: true, configurable: true });
  Object.defineProperty(globalThis, "TextDecoder", { value: TextDecoder, writable: true, configurable: true });
  // reducers must be deterministic: upstream removes the unseeded generator too
  delete Math.random;

  // ---- the mailbox ------------------------------------------------------------------------------------------
  const MAILBOX_SIZE = 1 << 20;
  const HEADER = 64;
  const CAPACITY = MAILBOX_SIZE - HEADER;
  const mailbox = new ArrayBuffer(MAILBOX_SIZE);
  const view = new DataView(mailbox);
  const bytes = new Uint8Array(mailbox);

  // header offsets
  const H_OP = 0, H_STATUS = 4, H_ARGS = 8, H_CHUNK = 32, H_TOTAL = 36, H_WIDE = 40;
  // ops (engine.py)
  const OP_APPEND = 1, OP_PULL = 2;
  const SYS = {
    table_id_from_name: 10, index_id_from_name: 11, datastore_table_row_count: 12,
    datastore_table_scan_bsatn: 13, datastore_index_scan_point_bsatn: 14, datastore_index_scan_range_bsatn: 15,
    row_iter_bsatn_advance: 16, row_iter_bsatn_close: 17, datastore_insert_bsatn: 18, datastore_update_bsatn: 19,
    datastore_delete_by_index_scan_point_bsatn: 20, datastore_delete_by_index_scan_range_bsatn: 21,
    datastore_delete_all_by_eq_bsatn: 22, datastore_clear: 23, volatile_nonatomic_schedule_immediate: 24,
    console_log: 25, console_timer_start: 26, console_timer_end: 27, identity: 28, get_jwt_payload: 29,
    procedure_start_mut_tx: 30, procedure_commit_mut_tx: 31, procedure_abort_mut_tx: 32,
    procedure_http_request: 33,
  };
  // statuses
  const ST_OK = 0, ST_BUFFER_TOO_SMALL = 0xffffffff, ST_HOST_FAILURE = 0xfffffffe;
  // dispatch ops and their outcomes
  const CALL_LOAD = 1, CALL_DESCRIBE = 2, CALL_REDUCER = 3, CALL_PROCEDURE = 4, CALL_VIEW = 5, CALL_VIEW_ANON = 6;
  const OUT_OK = 0, OUT_SENDER_ERROR = 1, OUT_PANIC = 2;

  let hostcall = null;
  let hooks = null;
  let errorConstructor = null;

  function putArgs(args) {
    for (let i = 0; i < 6; i++) view.setUint32(H_ARGS + 4 * i, i < args.length ? args[i] >>> 0 : 0, true);
  }

  // Write `payload` into the mailbox: all of it, or its tail after OP_APPEND calls for the rest.
  function putPayload(payload) {
    const total = payload ? payload.length : 0;
    let offset = 0;
    while (total - offset > CAPACITY) {
      view.setUint32(H_OP, OP_APPEND, true);
      view.setUint32(H_CHUNK, CAPACITY, true);
      view.setUint32(H_TOTAL, total, true);
      bytes.set(payload.subarray(offset, offset + CAPACITY), HEADER);
      hostcall();
      offset += CAPACITY;
    }
    view.setUint32(H_CHUNK, total - offset, true);
    view.setUint32(H_TOTAL, total, true);
    if (total) bytes.set(offset ? payload.subarray(offset) : payload, HEADER);
  }

  // The payload Python left in the mailbox (pulling what did not fit); a fresh copy.
  function takePayload() {
    const total = view.getUint32(H_TOTAL, true);
    let chunk = view.getUint32(H_CHUNK, true);
    const out = new Uint8Array(total);
    out.set(bytes.subarray(HEADER, HEADER + chunk));
    let have = chunk;
    while (have < total) {
      view.setUint32(H_OP, OP_PULL, true);
      view.setUint32(H_CHUNK, 0, true);
      view.setUint32(H_TOTAL, 0, true);
      hostcall();
      chunk = view.getUint32(H_CHUNK, true);
      if (chunk === 0) throw new Error("host: the mailbox ran dry");
      out.set(bytes.subarray(HEADER, HEADER + chunk), have);
      have += chunk;
    }
    return out;
  }

  function codeError(code, message) {
    const ctor = errorConstructor ? errorConstructor(code) : null;
    return ctor ? new ctor(message) : new Error(message);
  }

  // One syscall: op, u32 args, optional payload in; status checked; the mailbox then holds the answer.
  function sys(op, args, payload) {
    putArgs(args);
    putPayload(payload);
    view.setUint32(H_OP, op, true);
    view.setUint32(H_STATUS, 0, true);
    hostcall();
    const status = view.getUint32(H_STATUS, true);
    if (status === ST_OK) return;
    if (status === ST_BUFFER_TOO_SMALL) throw { __buffer_too_small__: view.getUint32(H_ARGS, true) };
    const message = new TextDecoder().decode(takePayload());
    if (status === ST_HOST_FAILURE) throw new Error(message);
    throw codeError(status, message);
  }

  const resultU32 = () => view.getUint32(H_ARGS, true);

  // The first rows of a scan come back with the scan itself (args[1] bit 0; bit 1: that was every row), so a
  // point lookup crosses to the host once. The block is whole rows: served at once to the next advance.
  const PREFETCHED = 1, EXHAUSTED = 2;
  const prefetched = new Map();

  function scanResult() {
    const iter = resultU32();
    const flags = view.getUint32(H_ARGS + 4, true);
    if (flags & PREFETCHED) prefetched.set(iter, { rows: takePayload(), exhausted: (flags & EXHAUSTED) !== 0 });
    return iter;
  }
  const resultU64 = () => view.getBigUint64(H_WIDE, true);

  function u32(value, what) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new TypeError(`${what} must be a u32, not ${typeof value === "number" ? value : typeof value}`);
    }
    return value;
  }

  function bufferPrefix(buffer, length, what) {
    if (!(buffer instanceof ArrayBuffer)) throw new TypeError(`${what} must be an ArrayBuffer`);
    u32(length, `${what} length`);
    if (length > buffer.byteLength) {
      throw new RangeError(`${what} length ${length} is past the end of its buffer (${buffer.byteLength} bytes)`);
    }
    return new Uint8Array(buffer, 0, length);
  }

  function bigintBytes(value, size, what) {
    if (typeof value !== "bigint" || value < 0n || value >> BigInt(8 * size) !== 0n) {
      throw new TypeError(`${what} must be an unsigned ${8 * size}-bit bigint`);
    }
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < size / 8; i++) dv.setBigUint64(8 * i, (value >> BigInt(64 * i)) & 0xffffffffffffffffn, true);
    return out;
  }

  function bytesBigint(source, offset, size) {
    let value = 0n;
    for (let i = size / 8 - 1; i >= 0; i--) value = (value << 64n) | source.getBigUint64(offset + 8 * i, true);
    return value;
  }

  function asUint8(value, what) {
    if (value instanceof Uint8Array) return value;
    if (typeof value === "string") return utf8Encode(value);
    if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    throw new TypeError(`${what} must be a Uint8Array`);
  }

  function pair(first, second) {
    const out = new Uint8Array(4 + first.length + second.length);
    new DataView(out.buffer).setUint32(0, first.length, true);
    out.set(first, 4);
    out.set(second, 4 + first.length);
    return out;
  }

  function splitPair(data) {
    const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    return [data.slice(4, 4 + length), data.slice(4 + length)];
  }

  const scanArgs = (buffer, prefixLen, prefixElems, rstartLen, rendLen) => {
    [prefixLen, rstartLen, rendLen].forEach((n, i) => u32(n, ["prefix_len", "rstart_len", "rend_len"][i]));
    if (typeof prefixElems !== "number" || !Number.isInteger(prefixElems) || prefixElems < 0 || prefixElems > 0xffff) {
      throw new TypeError("prefix_elems must be a u16");
    }
    const used = prefixLen + rstartLen + rendLen;
    return [bufferPrefix(buffer, used, "scan buffer"), [prefixLen, prefixElems, rstartLen, rendLen]];
  };

  // the caller's file and line, as upstream logs them (the frame above console_log's caller)
  function callerFrame() {
    const stack = String(new Error().stack || "").split("\n");
    for (let i = 3; i < stack.length; i++) {
      const match = /\(?([^()\s]+):(\d+):\d+\)?\s*$/.exec(stack[i]);
      if (match) return [match[1], Number(match[2])];
    }
    return ["", 0];
  }

  const encoder = new TextEncoder();
  const sys20 = {
    table_id_from_name(name) {
      sys(SYS.table_id_from_name, [], encoder.encode(String(name)));
      return resultU32();
    },
    index_id_from_name(name) {
      sys(SYS.index_id_from_name, [], encoder.encode(String(name)));
      return resultU32();
    },
    datastore_table_row_count(tableId) {
      sys(SYS.datastore_table_row_count, [u32(tableId, "table_id")]);
      return resultU64();
    },
    datastore_table_scan_bsatn(tableId) {
      sys(SYS.datastore_table_scan_bsatn, [u32(tableId, "table_id")]);
      return scanResult();
    },
    datastore_index_scan_point_bsatn(indexId, point, pointLen) {
      sys(SYS.datastore_index_scan_point_bsatn, [u32(indexId, "index_id")], bufferPrefix(point, pointLen, "point"));
      return scanResult();
    },
    datastore_index_scan_range_bsatn(indexId, buffer, prefixLen, prefixElems, rstartLen, rendLen) {
      const [data, lens] = scanArgs(buffer, prefixLen, prefixElems, rstartLen, rendLen);
      sys(SYS.datastore_index_scan_range_bsatn, [u32(indexId, "index_id"), ...lens], data);
      return scanResult();
    },
    row_iter_bsatn_advance(iter, buffer) {
      if (!(buffer instanceof ArrayBuffer)) throw new TypeError("the row buffer must be an ArrayBuffer");
      const block = prefetched.get(iter);
      if (block !== undefined) {
        // the block is whole rows, so it is served whole (a buffer too small for it grows to its size)
        if (block.rows.length > buffer.byteLength) throw { __buffer_too_small__: block.rows.length };
        prefetched.delete(iter);
        new Uint8Array(buffer).set(block.rows);
        if (block.exhausted) return -block.rows.length;
        if (block.rows.length > 0) return block.rows.length;
      }
      sys(SYS.row_iter_bsatn_advance, [u32(iter, "iter"), buffer.byteLength]);
      const exhausted = view.getUint32(H_ARGS, true) !== 0;
      const rows = takePayload();
      new Uint8Array(buffer).set(rows);
      return exhausted ? -rows.length : rows.length;
    },
    row_iter_bsatn_close(iter) {
      const block = prefetched.get(iter);
      prefetched.delete(iter);
      if (block !== undefined && block.exhausted) return; // the host closed it when it ran out
      sys(SYS.row_iter_bsatn_close, [u32(iter, "iter")]);
    },
    datastore_insert_bsatn(tableId, row, rowLen) {
      sys(SYS.datastore_insert_bsatn, [u32(tableId, "table_id")], bufferPrefix(row, rowLen, "row"));
      return writeBack(row);
    },
    datastore_update_bsatn(tableId, indexId, row, rowLen) {
      sys(SYS.datastore_update_bsatn, [u32(tableId, "table_id"), u32(indexId, "index_id")], bufferPrefix(row, rowLen, "row"));
      return writeBack(row);
    },
    datastore_delete_by_index_scan_point_bsatn(indexId, point, pointLen) {
      sys(SYS.datastore_delete_by_index_scan_point_bsatn, [u32(indexId, "index_id")], bufferPrefix(point, pointLen, "point"));
      return resultU32();
    },
    datastore_delete_by_index_scan_range_bsatn(indexId, buffer, prefixLen, prefixElems, rstartLen, rendLen) {
      const [data, lens] = scanArgs(buffer, prefixLen, prefixElems, rstartLen, rendLen);
      sys(SYS.datastore_delete_by_index_scan_range_bsatn, [u32(indexId, "index_id"), ...lens], data);
      return resultU32();
    },
    datastore_delete_all_by_eq_bsatn(tableId, relation, relationLen) {
      sys(SYS.datastore_delete_all_by_eq_bsatn, [u32(tableId, "table_id")], bufferPrefix(relation, relationLen, "relation"));
      return resultU32();
    },
    volatile_nonatomic_schedule_immediate(reducerName, args) {
      sys(SYS.volatile_nonatomic_schedule_immediate, [], pair(encoder.encode(String(reducerName)), asUint8(args, "args")));
    },
    console_log(level, message) {
      const [file, line] = callerFrame();
      sys(SYS.console_log, [u32(level, "level") & 0xff, line], pair(encoder.encode(String(message)), encoder.encode(file)));
    },
    console_timer_start(name) {
      sys(SYS.console_timer_start, [], encoder.encode(String(name)));
      return resultU32();
    },
    console_timer_end(spanId) {
      sys(SYS.console_timer_end, [u32(spanId, "span_id")]);
    },
    identity() {
      sys(SYS.identity, []);
      const data = takePayload();
      return bytesBigint(new DataView(data.buffer), 0, 32);
    },
    get_jwt_payload(connectionId) {
      sys(SYS.get_jwt_payload, [], bigintBytes(connectionId, 16, "connection_id"));
      return takePayload();
    },
    procedure_http_request(request, body) {
      sys(SYS.procedure_http_request, [], pair(asUint8(request, "request"), asUint8(body, "body")));
      return splitPair(takePayload());
    },
    procedure_start_mut_tx() {
      sys(SYS.procedure_start_mut_tx, []);
      return view.getBigInt64(H_WIDE, true);
    },
    procedure_commit_mut_tx() {
      sys(SYS.procedure_commit_mut_tx, []);
    },
    procedure_abort_mut_tx() {
      sys(SYS.procedure_abort_mut_tx, []);
    },
  };

  function writeBack(row) {
    const generated = takePayload();
    if (generated.length > row.byteLength) {
      throw new RangeError(`the row buffer is too small for the ${generated.length} generated bytes`);
    }
    new Uint8Array(row).set(generated);
    return generated.length;
  }

  const moduleHooks = Symbol("SpacetimeDB.moduleHooks.v2");
  const sysModules = {
    "2.0": Object.freeze(Object.assign(Object.create(null), sys20, { moduleHooks })),
    "2.1": Object.freeze(Object.assign(Object.create(null), {
      datastore_clear(tableId) {
        sys(SYS.datastore_clear, [u32(tableId, "table_id")]);
        return resultU64();
      },
    })),
  };

  function sysModule(version) {
    const found = sysModules[version];
    if (!found) throw new Error(`this host provides spacetime:sys@2.0 and @2.1, not @${version}`);
    return found;
  }

  // An object that behaves like the module's ESM namespace: no prototype, keys in code-unit order, frozen.
  function namespace(exports) {
    const ns = Object.create(null);
    for (const key of Object.keys(exports).sort()) ns[key] = exports[key];
    Object.defineProperty(ns, Symbol.toStringTag, { value: "Module" });
    return Object.freeze(ns);
  }

  function load(factory) {
    const ns = namespace(factory(sysModule));
    const main = ns.default;
    if (main === null || (typeof main !== "object" && typeof main !== "function") || typeof main[moduleHooks] !== "function") {
      throw new TypeError("the module's default export is not a SpacetimeDB schema (no moduleHooks): export the value of schema(...) as default");
    }
    const found = main[moduleHooks](ns);
    for (const name of ["__describe_module__", "__call_reducer__", "__get_error_constructor__"]) {
      if (typeof found[name] !== "function") throw new TypeError(`the module's hooks have no ${name}`);
    }
    hooks = found;
    errorConstructor = (code) => hooks.__get_error_constructor__(code);
  }

  function viewBytes(result) {
    if (result instanceof Uint8Array) return result;
    if (result && result.data instanceof Uint8Array) return result.data;
    throw new TypeError("a view returned neither bytes nor an object with a `data` Uint8Array");
  }

  // Sender, connection id and timestamp of a call: 32 + 16 bytes at the start of the payload, and H_WIDE.
  function callContext(payload) {
    const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    return [bytesBigint(dv, 0, 32), bytesBigint(dv, 32, 16), view.getBigInt64(H_WIDE, true), payload.subarray(48)];
  }

  function run(op, argument) {
    const id = view.getUint32(H_ARGS, true);
    switch (op) {
      case CALL_LOAD:
        load(argument);
        return new Uint8Array(0);
      case CALL_DESCRIBE:
        return hooks.__describe_module__();
      case CALL_REDUCER: {
        const [sender, connection, timestamp, args] = callContext(takePayload());
        const dv = new DataView(args.buffer, args.byteOffset, args.byteLength);
        const returned = hooks.__call_reducer__(id, sender, connection, timestamp, dv);
        if (returned !== undefined) throw new TypeError("a reducer returned a value other than undefined");
        return new Uint8Array(0);
      }
      case CALL_PROCEDURE: {
        const [sender, connection, timestamp, args] = callContext(takePayload());
        if (typeof hooks.__call_procedure__ !== "function") throw new TypeError("the module defines no procedures");
        return asUint8(hooks.__call_procedure__(id, sender, connection, timestamp, args), "a procedure's result");
      }
      case CALL_VIEW: {
        const [sender, , , args] = callContext(takePayload());
        if (typeof hooks.__call_view__ !== "function") throw new TypeError("the module defines no views");
        return viewBytes(hooks.__call_view__(id, sender, args));
      }
      case CALL_VIEW_ANON: {
        if (typeof hooks.__call_view_anon__ !== "function") throw new TypeError("the module defines no views");
        return viewBytes(hooks.__call_view_anon__(id, takePayload()));
      }
      default:
        throw new Error(`host: unknown call ${op}`);
    }
  }

  function describeError(error) {
    if (error instanceof Error) return error.stack ? String(error.stack) : `${error.name}: ${error.message}`;
    try {
      return `uncaught ${typeof error}: ${JSON.stringify(error)}`;
    } catch {
      return `uncaught ${String(error)}`;
    }
  }

  // The host's entry point: the call is described in the mailbox; the result (or the error's message) is
  // left in the mailbox as a payload, and the outcome is returned.
  function dispatch(argument) {
    const op = view.getUint32(H_OP, true);
    prefetched.clear();
    let result;
    try {
      result = asUint8(run(op, argument), "a hook's result");
    } catch (error) {
      const senderError = hooks && hooks.__sender_error_class__;
      if (senderError && error instanceof senderError) {
        putPayload(encoder.encode(String(error.message)));
        return OUT_SENDER_ERROR;
      }
      putPayload(encoder.encode(describeError(error)));
      return OUT_PANIC;
    }
    putPayload(result);
    return OUT_OK;
  }

  globalThis.__stdb_mailbox = mailbox;
  globalThis.__stdb_boot = function boot(host) {
    hostcall = host;
    delete globalThis.__stdb_mailbox;
    delete globalThis.__stdb_boot;
    delete globalThis.__stdb_hostcall;
    return dispatch;
  };
})();
//# sourceURL=spacetimedb-host.js
