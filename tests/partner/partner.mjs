// An outside partner's client, written from docs/protocol.md, docs/mall.md,
// docs/merchant-node.md, the .proto files and docs/test-vectors/*.json alone, in Node's
// standard library. It recomputes every vector byte for byte and exercises the documented
// refusals; it prints each check and exits 1 on any mismatch.
//   node tests/partner/partner.mjs                 run every check
//   node tests/partner/partner.mjs --emit-webhook  print a webhook this client signs (JSON)
//   node tests/partner/partner.mjs --verify-webhook  check one given as JSON on stdin
import { sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import {
  DOMAIN_TAG,
  Refused,
  auditEntryHash,
  digest,
  keyId,
  open,
  openAnswer,
  privateKeyFromSeed,
  rawPublicKey,
  seal,
  sha256,
  signedBytes,
} from "./envelope.mjs";
import { decode, encode, fromJson, parseTimestamp } from "./proto.mjs";
import { consentCode, matchingStep, portfolioCode, spendCode, timeStep, totp } from "./wallet.mjs";
import { checkReveal, commitmentOf, prizeFor, roll } from "./lottery.mjs";
import { WEBHOOK_TAG, signWebhook, verifyWebhook, webhookSignedBytes } from "./webhook.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const vectors = JSON.parse(readFileSync(path.join(root, "docs/test-vectors/envelope-v1.json")));
const lottery = JSON.parse(readFileSync(path.join(root, "docs/test-vectors/lottery-v1.json")));
const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => Buffer.from(s, "hex");
const nanosOf = (ts) => ts.seconds * 1_000_000_000n + ts.nanos;

let checks = 0;
const failures = [];
function check(name, got, want) {
  checks++;
  const g = Buffer.isBuffer(got) ? hex(got) : String(got);
  const w = Buffer.isBuffer(want) ? hex(want) : String(want);
  if (g !== w) failures.push(`${name}\n    got  ${g}\n    want ${w}`);
}
function refuses(name, fn, reason) {
  checks++;
  try {
    fn();
    failures.push(`${name}: accepted, expected ${reason ?? "a refusal"}`);
  } catch (e) {
    if (!(e instanceof Refused)) failures.push(`${name}: threw ${e.stack}`);
    else if (reason && e.reason !== reason) failures.push(`${name}: ${e.reason}, want ${reason}`);
  }
}
function section(title) {
  console.log(`\n== ${title}`);
}


function envelopes() {
  section(`envelopes (${DOMAIN_TAG}): encode, sign, verify, answer binding`);
  check("domain_tag", vectors.domain_tag, DOMAIN_TAG);
  const opened = {};
  for (const [name, v] of Object.entries(vectors.envelopes)) {
    const seed = unhex(v.private_seed_hex);
    const raw = rawPublicKey(privateKeyFromSeed(seed));
    check(`${name} public key`, raw, unhex(v.public_key_hex));
    check(`${name} key_id`, keyId(raw), v.key_id);
    const message = fromJson(v.payload_type, v.message_json);
    // The vector's "header" block and the message's header say the same thing.
    const h = v.message_json.header;
    for (const f of ["request_id", "issued_at", "sender_id", "audience"]) {
      check(`${name} header.${f}`, h[f], v.header[f]);
    }
    check(`${name} header.request_digest`, unhex(v.header.request_digest_hex),
      Buffer.from(h.request_digest ?? "", "base64"));
    const sealed = seal({ payloadType: v.payload_type, message, signerId: v.signer_id, seed });
    check(`${name} payload`, sealed.payload, unhex(v.payload_hex));
    check(`${name} signed_bytes`, sealed.toSign, unhex(v.signed_bytes_hex));
    check(`${name} signature`, sealed.signature, unhex(v.signature_hex));
    check(`${name} digest`, digest(v.payload_type, sealed.payload), unhex(v.digest_hex));
    check(`${name} envelope`, sealed.bytes, unhex(v.envelope_hex));
    // Re-encoding the parsed envelope in field order gives the same bytes (audit step 4).
    const parsed = decode("coalition.envelope.v1.SignedEnvelope", unhex(v.envelope_hex));
    check(`${name} envelope re-encoded`, encode("coalition.envelope.v1.SignedEnvelope", parsed),
      unhex(v.envelope_hex));
    check(`${name} payload decoded and re-encoded`,
      encode(v.payload_type, decode(v.payload_type, parsed.payload)), unhex(v.payload_hex));
    console.log(`  ${name}: ${v.payload_type} by ${v.signer_id} (key ${v.key_id}) reproduced`);
  }
  const directory = new Map(
    Object.values(vectors.envelopes).map((v) => [
      v.signer_id,
      new Map([[v.key_id, unhex(v.public_key_hex)]]),
    ]),
  );
  const at = (v, deltaNs = 0n) => nanosOf(parseTimestamp(v.header.issued_at)) + deltaNs;
  const options = (v, extra = {}) => ({
    expectedType: v.payload_type,
    allowedSigners: null,
    directory,
    self: v.header.audience,
    now: at(v),
    ...extra,
  });
  for (const [name, v] of Object.entries(vectors.envelopes)) {
    if (v.answers) continue;
    opened[name] = open(unhex(v.envelope_hex), options(v));
    check(`${name} accepted at its issued_at`, hex(opened[name].digest), v.digest_hex);
  }
  const receipt = vectors.envelopes.hold_receipt;
  const request = opened[receipt.answers];
  check("hold_receipt answers", receipt.answers, "place_hold_command");
  check("hold_receipt request_digest = digest(place_hold_command)",
    receipt.header.request_digest_hex, vectors.envelopes.place_hold_command.digest_hex);
  const answerOptions = {
    request,
    expectedType: receipt.payload_type,
    answerer: "tea",
    directory,
    self: "exchange",
    now: at(receipt),
  };
  openAnswer(unhex(receipt.envelope_hex), answerOptions);
  checks++;
  console.log("  every envelope accepted at its issued_at; the receipt opens as tea's answer");
  refuses("receipt bound to another request", () =>
    openAnswer(unhex(receipt.envelope_hex), { ...answerOptions, request: opened.authorize_command }),
    "ANSWER_MISMATCH");
  refuses("receipt from an unexpected answerer", () =>
    openAnswer(unhex(receipt.envelope_hex), { ...answerOptions, answerer: "noodles" }),
    "SIGNER_NOT_ALLOWED");
  const place = vectors.envelopes.place_hold_command;
  check("PlaceHold request id = <authorization_id>:hold", place.header.request_id,
    `${place.message_json.hold_id}:hold`);

  let flips = 0;
  for (const [name, v] of Object.entries(vectors.envelopes)) {
    const bytes = unhex(v.envelope_hex);
    for (let i = 0; i < bytes.length; i++) {
      const forged = Buffer.from(bytes);
      forged[i] ^= 0x01;
      refuses(`${name} with byte ${i} flipped`, () => open(forged, options(v)));
      flips++;
    }
    // Exactly 300 s either side passes; one nanosecond more is stale.
    open(bytes, options(v, { now: at(v, 300_000_000_000n) }));
    open(bytes, options(v, { now: at(v, -300_000_000_000n) }));
    checks += 2;
    refuses(`${name} 300 s + 1 ns late`, () => open(bytes, options(v, { now: at(v, 300_000_000_001n) })),
      "STALE_MESSAGE");
    refuses(`${name} to the wrong audience`, () => open(bytes, options(v, { self: "salon" })),
      "WRONG_AUDIENCE");
    refuses(`${name} on the wrong RPC`, () =>
      open(bytes, options(v, { expectedType: "coalition.exchange.v1.QuoteCommand" })),
      "WRONG_MESSAGE_TYPE");
    // Domain separation: the same payload signed bare, or presented as another type, fails.
    const seed = unhex(v.private_seed_hex);
    const env = decode("coalition.envelope.v1.SignedEnvelope", bytes);
    const bare = { ...env, signature: signRaw(seed, env.payload) };
    refuses(`${name} signed without the domain prefix`, () =>
      open(encode("coalition.envelope.v1.SignedEnvelope", bare), options(v)), "BAD_SIGNATURE");
    const retyped = { ...env, payload_type: "coalition.exchange.v1.QuoteCommand" };
    refuses(`${name} relabelled as another type`, () =>
      open(encode("coalition.envelope.v1.SignedEnvelope", retyped),
        options(v, { expectedType: "coalition.exchange.v1.QuoteCommand" })), "BAD_SIGNATURE");
  }
  console.log(`  ${flips} single-bit forgeries refused; ±300 s passes, 300 s + 1 ns is STALE_MESSAGE;`);
  console.log("  wrong audience, wrong type, no domain prefix, relabelled type refused");
}

// Pure Ed25519 over arbitrary bytes (node:crypto: a null algorithm).
const signRaw = (seed, bytes) => sign(null, bytes, privateKeyFromSeed(seed));

function auditLog() {
  section("audit log hash chain");
  let previous = Buffer.alloc(32);
  for (const e of vectors.audit_log) {
    const envelope = unhex(vectors.envelopes[e.envelope].envelope_hex);
    check(`audit ${e.sequence} envelope_sha256`, sha256(envelope), unhex(e.envelope_sha256_hex));
    check(`audit ${e.sequence} previous_hash`, unhex(e.previous_hash_hex), previous);
    const h = auditEntryHash({
      previousHash: previous,
      sequence: e.sequence,
      direction: e.direction,
      peerId: e.peer_id,
      outcome: e.outcome,
      envelope,
    });
    check(`audit ${e.sequence} entry_hash`, h, unhex(e.entry_hash_hex));
    previous = h;
  }
  console.log(`  ${vectors.audit_log.length} entries chained from 32 zero bytes`);
}

function refusalRecord() {
  section("refusal record of a forged envelope");
  const r = vectors.refusal_record;
  const forged = unhex(r.envelope_hex);
  const env = decode("coalition.envelope.v1.SignedEnvelope", forged);
  const record = {
    envelope_sha256: sha256(forged),
    envelope_size: BigInt(forged.length),
    claimed_signer_id: env.signer_id,
    claimed_key_id: env.key_id,
    payload_type: env.payload_type,
    reason: r.record_json.reason,
    peer: r.record_json.peer,
  };
  const json = fromJson("coalition.exchange.v1.RefusalRecord", r.record_json);
  for (const k of Object.keys(record)) {
    check(`record ${k} from the envelope`, String(json[k]), String(record[k]));
  }
  const bytes = encode("coalition.exchange.v1.RefusalRecord", record);
  check("record bytes", bytes, unhex(r.record_hex));
  check("audit entry envelope_sha256 = SHA-256(record)", sha256(bytes),
    unhex(r.entry_envelope_sha256_hex));
  console.log(`  RefusalRecord of ${forged.length} forged bytes (${r.record_json.reason})`);
}

function consent() {
  section("member's bound consent codes (COALITION-CONSENT-V1) and RFC 6238 codes");
  const c = vectors.consent_bound;
  check("consent step_seconds", c.step_seconds, 30);
  for (const k of c.cases) {
    const label = `${k.purpose} ${k.issuer_id}→${k.acquirer_id} max ${k.max_points} ` +
      `order "${k.order_id}" t=${k.unix_time}`;
    check(`${label} step`, timeStep(k.unix_time), k.time_step);
    const got = consentCode(c.secret_base32, {
      purpose: k.purpose,
      issuerId: k.issuer_id,
      acquirerId: k.acquirer_id,
      maxPoints: k.max_points,
      orderId: k.order_id,
      step: BigInt(k.time_step),
    });
    check(`${label} message`, got.message, unhex(k.message_hex));
    check(`${label} hmac`, got.mac, unhex(k.hmac_sha256_hex));
    check(`${label} offset`, got.offset, k.offset);
    check(`${label} code`, got.code, k.code);
    const who = { issuerId: k.issuer_id, acquirerId: k.acquirer_id, unixTime: k.unix_time };
    const wallet = k.purpose === "spend"
      ? spendCode(c.secret_base32, { ...who, maxPoints: k.max_points, orderId: k.order_id })
      : portfolioCode(c.secret_base32, who);
    check(`${label} wallet code`, wallet, k.code);
    console.log(`  ${label}: ${k.code}`);
  }
  const first = c.cases[0];
  const auth = vectors.envelopes.authorize_command;
  check("AuthorizeCommand carries consent_bound's first code", auth.message_json.consent_code,
    first.code);
  check("AuthorizeCommand consent_max_points", auth.message_json.consent_max_points,
    String(first.max_points));
  check("AuthorizeCommand issued at the code's time",
    parseTimestamp(auth.header.issued_at).seconds, first.unix_time);
  // The issuer's side: current step ± 1 accepted; the code binds max, acquirer and order.
  const facts = { issuerId: "tea", acquirerId: "noodles", maxPoints: 450, orderId: "" };
  const t = first.unix_time;
  const step = (over) => matchingStep(c.secret_base32, first.code, { ...facts, unixTime: t, ...over });
  check("issuer accepts the code one step earlier", step({ unixTime: t - 30 }), first.time_step);
  check("issuer accepts the code one step later", step({ unixTime: t + 30 }), first.time_step);
  check("issuer refuses it two steps later", step({ unixTime: t + 60 }), null);
  check("code for 450 cannot hold 451", step({ maxPoints: 451 }), null);
  check("code for noodles fails at salon", step({ acquirerId: "salon" }), null);
  check("code without order fails for an order", step({ orderId: "bowl-1" }), null);
  for (const k of vectors.consent_totp.codes) {
    check(`RFC 6238 t=${k.unix_time} step`, timeStep(k.unix_time), k.time_step);
    check(`RFC 6238 t=${k.unix_time} code`, totp(vectors.consent_totp.secret_base32, k.unix_time),
      k.code);
  }
  console.log(`  ${vectors.consent_totp.codes.length} plain RFC 6238 codes; issuer window ±1 step;` +
    " the code binds max, acquirer and order");
}

function lotteryDraws() {
  section("lottery-v1: commitments, every recorded draw, a seed not matching its commitment");
  check("recipe", lottery.recipe, "lottery-v1");
  let rejections = 0;
  for (const [n, c] of lottery.cases.entries()) {
    const seed = unhex(c.seed);
    check(`case ${n} commitment`, commitmentOf(seed), c.commitment);
    check(`case ${n} reveal accepted`, checkReveal(c.seed, c.commitment).ok, true);
    const weights = c.prizes.reduce((s, p) => s + BigInt(p.weight), 0n);
    check(`case ${n} Σ weights ≤ total`, weights <= BigInt(c.total_weight), true);
    for (const d of c.draws) {
      const r = roll(seed, d.draw_id, c.total_weight);
      rejections += r.rejected;
      check(`${d.draw_id} roll`, r.roll, d.roll);
      check(`${d.draw_id} prize`, prizeFor(r.roll, c.prizes), d.prize_id);
    }
    // A seed that is not the committed one: refused, and it would give other rolls.
    const other = Buffer.from(seed);
    other[31] ^= 0x01;
    check(`case ${n} altered seed refused`, checkReveal(hex(other), c.commitment).ok, false);
    check(`case ${n} upper-case seed refused`, checkReveal(c.seed.toUpperCase(), c.commitment).ok, false);
    const d0 = c.draws[0];
    const moved = c.draws.some((d) => roll(other, d.draw_id, c.total_weight).roll.toString() !== d.roll);
    check(`case ${n} altered seed changes the rolls`, moved, true);
    console.log(`  case ${n}: ${c.draws.length} draws recomputed (first ${d0.draw_id} → ${d0.roll})`);
  }
  check("some vector draw needs the rejection step (docs/mall.md says so)", rejections > 0, true);
  // The vectors tell the seed's bytes from its hex text as the HMAC key (docs/mall.md step 3).
  const c0 = lottery.cases[0];
  const asText = roll(Buffer.from(c0.seed, "ascii"), c0.draws[0].draw_id, c0.total_weight).roll;
  check("keying with the seed's hex text misses the vector", asText.toString() !== c0.draws[0].roll, true);
  console.log(`  ${rejections} rejected blocks across the vectors; altered seeds refused`);
}

// docs/merchant-node.md's example body and its signature vector, read from the page itself.
function webhookVector() {
  const doc = readFileSync(path.join(root, "docs/merchant-node.md"), "utf8");
  const part = doc.slice(doc.indexOf("### The webhook request"));
  const block = /```json\n([\s\S]*?)\n```/.exec(part)[1];
  const grab = (re) => {
    const m = re.exec(part);
    if (!m) throw new Error(`docs/merchant-node.md: no ${re}`);
    return m[1];
  };
  return {
    body: Buffer.from(block.replace(/\n /g, ""), "utf8"), // compact: the page wraps it
    seed: unhex(grab(/seed `([0-9a-f]{64})`/)),
    timestamp: Number(grab(/`Coalition-Timestamp: ([0-9]+)`/)),
    keyId: grab(/`Coalition-Key-Id: ([0-9a-f]{16})`/),
    signedSha256: grab(/SHA-256\s+`([0-9a-f]{64})`/),
    signature: grab(/Coalition-Signature: ([A-Za-z0-9+/]+=*)/),
  };
}
const WEBHOOK = webhookVector();
const WEBHOOK_BODY = WEBHOOK.body;
const WEBHOOK_TIME = WEBHOOK.timestamp;

function webhook() {
  section(`webhook signature (${WEBHOOK_TAG}): docs/merchant-node.md's vector`);
  const seed = WEBHOOK.seed;
  const raw = rawPublicKey(privateKeyFromSeed(seed));
  const headers = exampleWebhook(seed);
  check("webhook body is the page's 292 bytes", WEBHOOK_BODY.length, 292);
  check("webhook body is compact JSON with sorted keys", JSON.stringify(sortKeys(JSON.parse(WEBHOOK_BODY))),
    WEBHOOK_BODY.toString("utf8"));
  check("webhook key id", headers["Coalition-Key-Id"], WEBHOOK.keyId);
  check("webhook signed bytes", sha256(webhookSignedBytes(String(WEBHOOK_TIME), WEBHOOK_BODY)),
    unhex(WEBHOOK.signedSha256));
  check("webhook signature", headers["Coalition-Signature"], WEBHOOK.signature);
  const v = (over = {}) =>
    verifyWebhook({ publicKeyRaw: raw, headers, body: WEBHOOK_BODY, nowSeconds: WEBHOOK_TIME, ...over });
  const withHeader = (name, value) => ({ headers: { ...headers, [name]: value } });
  check("webhook verifies", v(), null);
  check("webhook 300 s later verifies", v({ nowSeconds: WEBHOOK_TIME + 300 }), null);
  check("webhook 301 s later is stale", v({ nowSeconds: WEBHOOK_TIME + 301 }), "stale timestamp");
  const tampered = Buffer.from(WEBHOOK_BODY);
  tampered[tampered.length - 3] ^= 0x01;
  check("tampered body refused", v({ body: tampered }), "bad signature");
  check("other timestamp refused", v(withHeader("Coalition-Timestamp", String(WEBHOOK_TIME + 1))),
    "bad signature");
  check("other key id refused", v(withHeader("Coalition-Key-Id", "0123456789abcdef")),
    "unknown key id");
  // An envelope signature over the same bytes never passes as a webhook signature.
  const envSig = signRaw(seed, signedBytes("x", WEBHOOK_BODY));
  check("envelope-domain signature refused", v(withHeader("Coalition-Signature",
    envSig.toString("base64"))), "bad signature");
  console.log(`  the page's signature reproduced (key ${headers["Coalition-Key-Id"]}); forgeries refused`);
}

const exampleWebhook = (seed) =>
  signWebhook({ seed, merchantId: "tea", notificationId: "42", timestamp: WEBHOOK_TIME, body: WEBHOOK_BODY });

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
}

function emitWebhook() {
  const headers = exampleWebhook(WEBHOOK.seed);
  const publicKeyHex = hex(rawPublicKey(privateKeyFromSeed(WEBHOOK.seed)));
  const body = WEBHOOK_BODY.toString("utf8");
  console.log(JSON.stringify({ seed_hex: hex(WEBHOOK.seed), public_key_hex: publicKeyHex, headers, body,
    now: WEBHOOK_TIME }));
}

if (process.argv.includes("--emit-webhook")) {
  emitWebhook();
} else if (process.argv.includes("--verify-webhook")) {
  // stdin: {"public_key_hex", "headers", "body", "now"}; prints the refusal, or "ok".
  const input = JSON.parse(readFileSync(0, "utf8"));
  const why = verifyWebhook({ publicKeyRaw: unhex(input.public_key_hex), headers: input.headers,
    body: Buffer.from(input.body, "utf8"), nowSeconds: input.now });
  console.log(why ?? "ok");
  process.exit(why ? 1 : 0);
} else {
  envelopes();
  auditLog();
  refusalRecord();
  consent();
  lotteryDraws();
  webhook();
  console.log(`\n${checks} checks, ${failures.length} failed`);
  for (const f of failures) console.log(`FAIL ${f}`);
  process.exit(failures.length ? 1 : 0);
}
