// The lottery's provably fair recipe lottery-v1 (docs/mall.md, "The lottery"): a member
// recomputes her draw from the revealed seed with nothing but SHA-256 and HMAC.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

const TWO_64 = 1n << 64n;

export const commitmentOf = (seed) => createHash("sha256").update(seed).digest("hex");

// The revealed seed must be 32 bytes (64 lower-case hex digits) hashing to the commitment.
export function checkReveal(seedHex, commitmentHex) {
  if (!/^[0-9a-f]{64}$/.test(seedHex)) return { ok: false, why: "seed is not 64 lower-case hex" };
  const got = Buffer.from(commitmentOf(Buffer.from(seedHex, "hex")), "hex");
  const want = Buffer.from(commitmentHex, "hex");
  if (want.length !== 32 || !timingSafeEqual(got, want)) {
    return { ok: false, why: "SHA-256(seed) differs from the commitment" };
  }
  return { ok: true };
}

export const drawId = (lotteryId, memberId, requestId) => `${lotteryId}/${memberId}/${requestId}`;

// The roll: the first block whose leading 64 bits fall under the largest multiple of
// totalWeight (rejection sampling); also how many blocks were rejected on the way.
export function roll(seed, id, totalWeight) {
  const total = BigInt(totalWeight);
  if (total < 1n) throw new Error("totalWeight must be at least 1");
  const limit = TWO_64 - (TWO_64 % total);
  for (let i = 0; ; i++) {
    const index = Buffer.alloc(4);
    index.writeUInt32BE(i);
    const block = createHmac("sha256", seed)
      .update(Buffer.concat([Buffer.from(id, "utf8"), Buffer.from([0]), index]))
      .digest();
    const x = block.readBigUInt64BE(0);
    if (x < limit) return { roll: x % total, rejected: i };
  }
}

// Prizes in published order; a roll at or past the sum of weights wins nothing ("").
export function prizeFor(rollValue, prizes) {
  let upper = 0n;
  for (const p of prizes) {
    upper += BigInt(p.weight);
    if (rollValue < upper) return p.prize_id;
  }
  return "";
}
