// The member's wallet, from docs/protocol.md "The member's consent" and "Portfolio consent":
// six-digit codes bound to what she agrees to (purpose, issuer, acquirer, maximum, order, step).
import { createHmac } from "node:crypto";

export const CONSENT_TAG = "COALITION-CONSENT-V1";
export const STEP_SECONDS = 30n;

// RFC 4648 base32 (upper case, '=' padding optional), strictly: anything else is an error.
export function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const clean = text.replace(/=+$/, "");
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export const timeStep = (unixTime) => BigInt(unixTime) / STEP_SECONDS; // floor for t ≥ 0

export function consentMessage({ purpose, issuerId, acquirerId, maxPoints, orderId, step }) {
  const maxText = BigInt(maxPoints).toString(10); // decimal ASCII, no leading zeros
  const stepBytes = Buffer.alloc(8);
  stepBytes.writeBigUInt64BE(BigInt(step));
  const zero = Buffer.from([0]);
  return Buffer.concat([
    Buffer.from(CONSENT_TAG, "utf8"),
    zero,
    Buffer.from(purpose, "utf8"),
    zero,
    Buffer.from(issuerId, "utf8"),
    zero,
    Buffer.from(acquirerId, "utf8"),
    zero,
    Buffer.from(maxText, "ascii"),
    zero,
    Buffer.from(orderId, "utf8"),
    zero,
    stepBytes,
  ]);
}

// RFC 4226 §5.3 dynamic truncation to six digits.
export function truncate(mac) {
  const offset = mac[mac.length - 1] & 0x0f;
  const binary =
    ((mac[offset] & 0x7f) << 24) |
    (mac[offset + 1] << 16) |
    (mac[offset + 2] << 8) |
    mac[offset + 3];
  return { offset, code: String(binary % 1_000_000).padStart(6, "0") };
}

export function consentCode(secretBase32, facts) {
  const message = consentMessage(facts);
  const mac = createHmac("sha256", base32Decode(secretBase32)).update(message).digest();
  return { message, mac, ...truncate(mac) };
}

export const spendCode = (secret, { issuerId, acquirerId, maxPoints, orderId = "", unixTime }) =>
  consentCode(secret, {
    purpose: "spend",
    issuerId,
    acquirerId,
    maxPoints,
    orderId,
    step: timeStep(unixTime),
  }).code;

export const portfolioCode = (secret, { issuerId, acquirerId, unixTime }) =>
  consentCode(secret, {
    purpose: "portfolio",
    issuerId,
    acquirerId,
    maxPoints: 0,
    orderId: "",
    step: timeStep(unixTime),
  }).code;

// What an issuer does with a spend code: the step it matches (current ± 1), or null.
export function matchingStep(secret, code, { issuerId, acquirerId, maxPoints, orderId, unixTime }) {
  const now = timeStep(unixTime);
  for (const step of [now - 1n, now, now + 1n]) {
    const facts = { purpose: "spend", issuerId, acquirerId, maxPoints, orderId, step };
    if (consentCode(secret, facts).code === code) return step;
  }
  return null;
}

// Plain RFC 6238 (SHA-1, 6 digits, 30 s): the unbound form, no longer accepted as consent.
export function totp(secretBase32, unixTime) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(timeStep(unixTime));
  return truncate(createHmac("sha1", base32Decode(secretBase32)).update(counter).digest()).code;
}
