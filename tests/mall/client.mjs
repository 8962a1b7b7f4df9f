// A mini-program's view of the mall, in another language: Node's fetch over the HTTP/JSON
// (Connect) API. Browses, buys a coupon, lists it, and redeems it at the POS.
// Usage: node client.mjs <base-url> <member-token> <pos-credential> <item-id>
const [base, memberToken, posKey, itemId] = process.argv.slice(2);

async function call(method, body, credential) {
  const res = await fetch(`${base}/coalition.merchant.v1.MallService/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${credential}`,
      origin: "https://shop.example",
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) {
    throw new Error(`${method}: HTTP ${res.status} ${json.code} ${reasonOf(json)}: ${json.message}`);
  }
  return { json, cors: res.headers.get("access-control-allow-origin") };
}

// The google.rpc.ErrorInfo detail's reason: field 1, a length-prefixed string.
function reasonOf(error) {
  const detail = (error.details || []).find((d) => d.type === "google.rpc.ErrorInfo");
  if (!detail) return "";
  const bytes = Buffer.from(detail.value, "base64");
  return bytes[0] === 0x0a ? bytes.subarray(2, 2 + bytes[1]).toString("utf8") : "";
}

const out = {};
const browse = await call("BrowseItems", {}, memberToken);
out.cors = browse.cors;
out.items = browse.json.items.map((i) => [i.itemId, Number(i.pricePoints)]);
const bought = await call("BuyItem", { requestId: "mp-buy-1", itemId }, memberToken);
out.order = { status: bought.json.order.status, points: Number(bought.json.order.points) };
const code = bought.json.order.couponCodes[0];
const mine = await call("ListMyCoupons", {}, memberToken);
out.couponStatus = mine.json.coupons.find((c) => c.code === code).status;
const redeemed = await call("RedeemCoupon", { requestId: "till-1-r1", code, tillId: "till-1" }, posKey);
out.redeemed = redeemed.json.coupon.status;
try {
  await call("RedeemCoupon", { requestId: "till-2-r1", code, tillId: "till-2" }, posKey);
  out.second = "accepted";
} catch (e) {
  out.second = e.message;
}
const balance = await call("GetMyBalance", {}, memberToken);
out.available = Number(balance.json.availablePoints);
console.log(JSON.stringify(out));
