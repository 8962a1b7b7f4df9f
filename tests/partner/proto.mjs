// A partner's protobuf wire format, written from the .proto files and the protobuf encoding
// guide only (no protobuf library): enough to encode the coalition messages the vectors hold
// in field-number order with proto3 defaults omitted, and to decode any message into fields.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

// The schema of each message a partner needs here: [field number, name, type].
// Types: "string", "bytes", "int64", "enum:<Enum>", "msg:<Message>"; a 4th element "oneof"
// marks a oneof member, which is written even when it holds its default (it is "set").
export const SCHEMA = {
  "google.protobuf.Timestamp": [
    [1, "seconds", "int64"],
    [2, "nanos", "int64"],
  ],
  "coalition.envelope.v1.SignedEnvelope": [
    [1, "payload", "bytes"],
    [2, "payload_type", "string"],
    [3, "signer_id", "string"],
    [4, "key_id", "string"],
    [5, "signature", "bytes"],
  ],
  "coalition.envelope.v1.MessageHeader": [
    [1, "request_id", "string"],
    [2, "issued_at", "msg:google.protobuf.Timestamp"],
    [3, "sender_id", "string"],
    [4, "audience", "string"],
    [5, "request_digest", "bytes"],
  ],
  "coalition.exchange.v1.AuthorizeCommand": [
    [1, "header", "msg:coalition.envelope.v1.MessageHeader"],
    [2, "issuer_id", "string"],
    [3, "member_id", "string"],
    [4, "order_id", "string"],
    [5, "points", "int64", "oneof"],
    [6, "amount_fen", "int64", "oneof"],
    [7, "consent_code", "string"],
    [8, "quote_id", "string"],
    [9, "consent_max_points", "int64"],
    [10, "consent_order_id", "string"],
  ],
  "coalition.exchange.v1.QuoteCommand": [
    [1, "header", "msg:coalition.envelope.v1.MessageHeader"],
    [2, "issuer_id", "string"],
    [3, "points", "int64", "oneof"],
    [4, "amount_fen", "int64", "oneof"],
  ],
  "coalition.issuer.v1.PlaceHoldCommand": [
    [1, "header", "msg:coalition.envelope.v1.MessageHeader"],
    [2, "hold_id", "string"],
    [3, "member_id", "string"],
    [4, "points", "int64"],
    [5, "consent_code", "string"],
    [6, "acquirer_id", "string"],
    [7, "ttl_seconds", "int64"],
    [8, "consent_max_points", "int64"],
    [9, "consent_order_id", "string"],
    [10, "fen_per_point", "string"],
    [11, "rate_version", "int64"],
  ],
  "coalition.issuer.v1.HoldReceipt": [
    [1, "header", "msg:coalition.envelope.v1.MessageHeader"],
    [2, "hold_id", "string"],
    [3, "status", "enum:coalition.issuer.v1.HoldStatus"],
    [4, "points", "int64"],
    [5, "expires_at", "msg:google.protobuf.Timestamp"],
    [6, "member_id", "string"],
  ],
  "coalition.exchange.v1.RefusalRecord": [
    [1, "envelope_sha256", "bytes"],
    [2, "envelope_size", "int64"],
    [3, "claimed_signer_id", "string"],
    [4, "claimed_key_id", "string"],
    [5, "payload_type", "string"],
    [6, "reason", "string"],
    [7, "peer", "string"],
  ],
};

export const ENUMS = {
  "coalition.issuer.v1.HoldStatus": {
    HOLD_STATUS_UNSPECIFIED: 0,
    HOLD_STATUS_PENDING: 1,
    HOLD_STATUS_POSTED: 2,
    HOLD_STATUS_VOIDED: 3,
    HOLD_STATUS_EXPIRED: 4,
  },
};

function varint(value) {
  // int64 as two's complement in 64 bits (a negative number takes 10 bytes).
  let v = BigInt.asUintN(64, BigInt(value));
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

function tag(field, wire) {
  return varint((field << 3) | wire);
}

function lengthDelimited(field, bytes) {
  return Buffer.concat([tag(field, WIRE_LEN), varint(bytes.length), bytes]);
}

// Encode a message given as plain values (strings, BigInt/number, Buffer, nested objects).
export function encode(typeName, value) {
  const schema = SCHEMA[typeName];
  if (!schema) throw new Error(`no schema for ${typeName}`);
  const parts = [];
  for (const [field, name, type, oneof] of schema) {
    if (!(name in value) || value[name] === undefined || value[name] === null) continue;
    const v = value[name];
    if (type === "string") {
      if (v === "" && !oneof) continue;
      parts.push(lengthDelimited(field, Buffer.from(v, "utf8")));
    } else if (type === "bytes") {
      if (v.length === 0 && !oneof) continue;
      parts.push(lengthDelimited(field, Buffer.from(v)));
    } else if (type === "int64") {
      if (BigInt(v) === 0n && !oneof) continue;
      parts.push(Buffer.concat([tag(field, WIRE_VARINT), varint(v)]));
    } else if (type.startsWith("enum:")) {
      const n = typeof v === "string" ? ENUMS[type.slice(5)][v] : v;
      if (n === undefined) throw new Error(`unknown enum value ${v}`);
      if (n === 0 && !oneof) continue;
      parts.push(Buffer.concat([tag(field, WIRE_VARINT), varint(n)]));
    } else if (type.startsWith("msg:")) {
      // A present sub-message is written even when empty (it is set).
      parts.push(lengthDelimited(field, encode(type.slice(4), v)));
    } else {
      throw new Error(`unknown type ${type}`);
    }
  }
  return Buffer.concat(parts);
}

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated varint");
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error("varint too long");
  }
}

// Decode into [{field, wire, value}] in wire order (value: BigInt or Buffer). Throws on
// malformed input, so a receiver can refuse it (MALFORMED_PAYLOAD).
export function decodeFields(buf) {
  const fields = [];
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new Error("field number 0");
    if (wire === WIRE_VARINT) {
      let v;
      [v, pos] = readVarint(buf, pos);
      fields.push({ field, wire, value: v });
    } else if (wire === WIRE_LEN) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new Error("truncated length-delimited field");
      fields.push({ field, wire, value: buf.subarray(pos, end) });
      pos = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (pos + size > buf.length) throw new Error("truncated fixed field");
      fields.push({ field, wire, value: buf.subarray(pos, pos + size) });
      pos += size;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return fields;
}

// Decode a message of a known type into plain values (last occurrence wins, as protobuf says).
export function decode(typeName, buf) {
  const schema = SCHEMA[typeName];
  const byNumber = new Map(schema.map((f) => [f[0], f]));
  const out = {};
  for (const { field, wire, value } of decodeFields(buf)) {
    const spec = byNumber.get(field);
    if (!spec) continue; // unknown field: ignored
    const [, name, type] = spec;
    const expected = type === "int64" || type.startsWith("enum:") ? WIRE_VARINT : WIRE_LEN;
    if (wire !== expected) throw new Error(`${typeName}.${name}: wrong wire type ${wire}`);
    if (type === "string") out[name] = new TextDecoder("utf-8", { fatal: true }).decode(value);
    else if (type === "bytes") out[name] = Buffer.from(value);
    else if (type === "int64") out[name] = BigInt.asIntN(64, value);
    else if (type.startsWith("enum:")) out[name] = Number(value);
    else out[name] = decode(type.slice(4), value);
  }
  return out;
}

// RFC 3339 (as proto3 JSON writes a Timestamp) → {seconds, nanos}, exactly (no float).
export function parseTimestamp(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!m) throw new Error(`not an RFC 3339 UTC timestamp: ${text}`);
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return { seconds: BigInt(ms / 1000), nanos: BigInt((m[7] || "").padEnd(9, "0")) };
}

// proto3 JSON (field names as in the .proto, int64 as strings, bytes as base64, enums by name,
// Timestamps as RFC 3339) → the plain values encode() takes.
export function fromJson(typeName, json) {
  if (typeName === "google.protobuf.Timestamp") return parseTimestamp(json);
  const schema = SCHEMA[typeName];
  const known = new Set(schema.map((f) => f[1]));
  for (const key of Object.keys(json)) {
    if (!known.has(key)) throw new Error(`${typeName} has no field ${key}`);
  }
  const out = {};
  for (const [, name, type] of schema) {
    if (!(name in json)) continue;
    const v = json[name];
    if (type === "bytes") out[name] = Buffer.from(v, "base64");
    else if (type === "int64") out[name] = BigInt(v);
    else if (type.startsWith("msg:")) out[name] = fromJson(type.slice(4), v);
    else out[name] = v;
  }
  return out;
}
