// The signed envelope as docs/protocol.md describes it ("The envelope", "The header", "The
// receiver's checks, in order"), in Node's standard library only.
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { decode, decodeFields, encode } from "./proto.mjs";

export const DOMAIN_TAG = "COALITION-ENVELOPE-V1";
const ENVELOPE = "coalition.envelope.v1.SignedEnvelope";
const HEADER = "coalition.envelope.v1.MessageHeader";
const ID_CHARS = /^[A-Za-z0-9._:-]{1,128}$/;
const SKEW_SECONDS = 300n;

export const sha256 = (bytes) => createHash("sha256").update(bytes).digest();

// Raw 32-byte keys ↔ node:crypto KeyObjects, through the fixed DER prefixes of RFC 8410.
export function privateKeyFromSeed(seed) {
  const prefix = Buffer.from("302e020100300506032b657004220420", "hex");
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: "der", type: "pkcs8" });
}
export function publicKeyFromRaw(raw) {
  const prefix = Buffer.from("302a300506032b6570032100", "hex");
  return createPublicKey({ key: Buffer.concat([prefix, raw]), format: "der", type: "spki" });
}
export function rawPublicKey(keyObject) {
  const der = createPublicKey(keyObject).export({ format: "der", type: "spki" });
  return der.subarray(der.length - 32);
}

// key_id: the first 16 lowercase hex digits of SHA-256 of the raw public key.
export const keyId = (rawPublic) => sha256(rawPublic).toString("hex").slice(0, 16);

export function signedBytes(payloadType, payload) {
  return Buffer.concat([
    Buffer.from(DOMAIN_TAG, "utf8"),
    Buffer.from([0]),
    Buffer.from(payloadType, "utf8"),
    Buffer.from([0]),
    payload,
  ]);
}

export const digest = (payloadType, payload) => sha256(signedBytes(payloadType, payload));

// Seal: serialize the inner message once, sign exactly those bytes, wrap them.
export function seal({ payloadType, message, signerId, seed }) {
  const payload = encode(payloadType, message);
  const toSign = signedBytes(payloadType, payload);
  const signature = sign(null, toSign, privateKeyFromSeed(seed));
  const rawPublic = rawPublicKey(privateKeyFromSeed(seed));
  const envelope = {
    payload,
    payload_type: payloadType,
    signer_id: signerId,
    key_id: keyId(rawPublic),
    signature,
  };
  return { payload, toSign, signature, envelope, bytes: encode(ENVELOPE, envelope) };
}

export class Refused extends Error {
  constructor(reason, detail) {
    super(`${reason}${detail ? `: ${detail}` : ""}`);
    this.reason = reason;
  }
}

// The receiver's checks 1-13 in the documented order (the exchange-only steps 0b, 0c, 5, 6, 8
// and 14 need the exchange's registry and store, not a partner's library).
//   directory: Map signer_id → Map key_id → raw public key
//   allowedSigners: who may call this service (step 2), or null for anyone known
export function open(envelopeBytes, { expectedType, allowedSigners, directory, self, now }) {
  let env;
  try {
    env = decode(ENVELOPE, envelopeBytes);
  } catch (e) {
    throw new Refused("MALFORMED_REQUEST", e.message);
  }
  const payload = env.payload ?? Buffer.alloc(0);
  const payloadType = env.payload_type ?? "";
  const signerId = env.signer_id ?? "";
  const kid = env.key_id ?? "";
  if (payloadType !== expectedType) throw new Refused("WRONG_MESSAGE_TYPE", payloadType);
  if (allowedSigners && !allowedSigners.includes(signerId)) {
    throw new Refused("SIGNER_NOT_ALLOWED", signerId);
  }
  if (!ID_CHARS.test(signerId) || !directory.has(signerId)) {
    throw new Refused("UNKNOWN_SIGNER", signerId);
  }
  const keys = directory.get(signerId);
  if (!/^[0-9a-f]{16}$/.test(kid) || !keys.has(kid)) throw new Refused("UNKNOWN_KEY", kid);
  const signature = env.signature ?? Buffer.alloc(0);
  const ok =
    signature.length === 64 &&
    verify(null, signedBytes(payloadType, payload), publicKeyFromRaw(keys.get(kid)), signature);
  if (!ok) throw new Refused("BAD_SIGNATURE");
  // Only now parse the payload (verify before parse). Every inner message has header = 1.
  let header;
  try {
    const headerField = decodeHeaderField(payload);
    header = headerField ? decode(HEADER, headerField) : {};
  } catch (e) {
    throw new Refused("MALFORMED_PAYLOAD", e.message);
  }
  if ((header.sender_id ?? "") !== signerId) throw new Refused("SENDER_MISMATCH");
  if ((header.audience ?? "") !== self) throw new Refused("WRONG_AUDIENCE", header.audience);
  const issued = header.issued_at;
  if (!issued) throw new Refused("STALE_MESSAGE", "no issued_at");
  const issuedNs = (issued.seconds ?? 0n) * 1_000_000_000n + (issued.nanos ?? 0n);
  const skew = now - issuedNs < 0n ? issuedNs - now : now - issuedNs;
  if (skew > SKEW_SECONDS * 1_000_000_000n) throw new Refused("STALE_MESSAGE");
  const requestId = header.request_id ?? "";
  if (requestId === "") throw new Refused("MISSING_FIELD", "request_id");
  if (!ID_CHARS.test(requestId)) throw new Refused("MALFORMED_ID", requestId);
  return { envelope: env, header, payload, digest: digest(payloadType, payload) };
}

// A client opening a signed answer: the same checks with itself as audience and the expected
// answerer as the only signer, then the binding to the request it sent.
export function openAnswer(answerBytes, { request, expectedType, answerer, directory, self, now }) {
  const opened = open(answerBytes, {
    expectedType,
    allowedSigners: [answerer],
    directory,
    self,
    now,
  });
  const wantDigest = request.digest;
  const gotDigest = opened.header.request_digest ?? Buffer.alloc(0);
  if (!gotDigest.equals(wantDigest)) throw new Refused("ANSWER_MISMATCH", "request_digest");
  if (opened.header.request_id !== request.header.request_id) {
    throw new Refused("ANSWER_MISMATCH", "request_id");
  }
  return opened;
}

// The header's bytes (field 1 of the inner message), without knowing the rest of its schema.
function decodeHeaderField(payload) {
  let found = null;
  for (const f of decodeFields(payload)) if (f.field === 1 && f.wire === 2) found = f.value;
  return found;
}

// The audit chain's entry hash (docs/protocol.md, "Audit log").
export function auditEntryHash({ previousHash, sequence, direction, peerId, outcome, envelope }) {
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(BigInt(sequence));
  const zero = Buffer.from([0]);
  return sha256(
    Buffer.concat([
      previousHash,
      seq,
      Buffer.from(direction, "utf8"),
      zero,
      Buffer.from(peerId, "utf8"),
      zero,
      Buffer.from(outcome, "utf8"),
      zero,
      sha256(envelope),
    ]),
  );
}
