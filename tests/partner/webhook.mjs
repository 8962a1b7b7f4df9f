// A merchant backend receiving the node's notifications (docs/merchant-node.md, "The webhook
// request"): Ed25519 over "COALITION-WEBHOOK-V1" 0x00 timestamp 0x00 body.
import { sign, verify } from "node:crypto";
import { keyId, privateKeyFromSeed, publicKeyFromRaw, rawPublicKey } from "./envelope.mjs";

export const WEBHOOK_TAG = "COALITION-WEBHOOK-V1";
const WINDOW_SECONDS = 300;

export function webhookSignedBytes(timestamp, body) {
  return Buffer.concat([
    Buffer.from(WEBHOOK_TAG, "utf8"),
    Buffer.from([0]),
    Buffer.from(timestamp, "ascii"),
    Buffer.from([0]),
    body,
  ]);
}

// What the node sends: headers for one attempt of one notification (body: the raw bytes).
export function signWebhook({ seed, merchantId, notificationId, timestamp, body }) {
  const raw = rawPublicKey(privateKeyFromSeed(seed));
  const signature = sign(null, webhookSignedBytes(String(timestamp), body), privateKeyFromSeed(seed));
  return {
    "Coalition-Notification-Id": String(notificationId),
    "Coalition-Merchant-Id": merchantId,
    "Coalition-Timestamp": String(timestamp),
    "Coalition-Key-Id": keyId(raw),
    "Coalition-Signature": signature.toString("base64"),
  };
}

// The receiver's checks as the doc lists them: key id, signature over the raw body (before
// parsing), timestamp within 5 minutes of its own clock. Returns the reason it refuses, or null.
export function verifyWebhook({ publicKeyRaw, headers, body, nowSeconds }) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const ts = h["coalition-timestamp"] ?? "";
  if (!/^[0-9]{1,20}$/.test(ts)) return "malformed timestamp";
  if ((h["coalition-key-id"] ?? "") !== keyId(publicKeyRaw)) return "unknown key id";
  const sigText = h["coalition-signature"] ?? "";
  if (!/^[A-Za-z0-9+/]{86}==$/.test(sigText)) return "malformed signature";
  const ok = verify(
    null,
    webhookSignedBytes(ts, body),
    publicKeyFromRaw(publicKeyRaw),
    Buffer.from(sigText, "base64"),
  );
  if (!ok) return "bad signature";
  if (Math.abs(nowSeconds - Number(ts)) > WINDOW_SECONDS) return "stale timestamp";
  return null;
}
