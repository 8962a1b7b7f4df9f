// The console's pages: texts in the chosen language, figures from the page's own event stream
// (server-sent events: the figures now, then whenever they change), charts by ECharts.
"use strict";

const TEXT = {
  zh: {
    title: "商圈积分控制台", logout: "退出", login: "登录", login_failed: "登录失败：请检查账号与密钥",
    merchant_login: "商户登录", operator_login: "运营方登录", merchant_id: "商户编号",
    admin_key: "管理密钥（admin 权限的 API Key）", operator_name: "运营账号", password: "密码",
    shop: "门店", today: "今日", totals: "累计", trend: "近两周趋势", campaigns: "活动预算消耗",
    alerts: "预警", live: "实时更新于", pool: "预算池", budget: "预算", granted: "已发放", burn: "消耗率",
    "today.issued": "发放积分", "today.redeemed": "兑换积分", "today.earns": "积分消费笔数",
    "today.redemptions": "兑换笔数", "today.enrolled": "新会员", "today.active_members": "活跃会员",
    "today.participation_rate_bps": "参与率", "today.redemption_rate_bps": "积分兑换率",
    "totals.members": "会员总数", "totals.issued": "累计发放", "totals.redeemed": "累计兑换",
    "totals.expired": "累计过期", "totals.clawed_back": "退款扣回", "totals.outstanding": "未兑积分（负债）",
    district: "商圈总览", flows: "跨店积分流向（近30天）", positions: "净头寸与净借记上限",
    merchant: "商户", status: "状态", net_debit: "未结算净借记（分）", cap: "上限（分）", cap_used: "占用",
    batches: "结算批次", period: "期间", records: "笔数", value: "金额（分）", fee: "手续费（分）",
    decision: "审批", approve: "批准", reject: "驳回", reject_reason: "驳回原因", breakage: "过期积分分成",
    issuer: "发行方", points: "积分", operator_share: "运营方份额（分）", forbidden: "无权访问此页面",
    issued: "发放", redeemed: "兑换", expired: "过期", no_cap: "无上限",
    campaign_roi: "活动投资回报（近30天）", campaign: "活动", points_cost_fen: "积分成本（分）",
    participating_revenue_fen: "参与订单收入（分）", roi_vs_control: "ROI（对照组）",
    roi_vs_baseline: "ROI（基线期）", segments: "会员分群", segment: "分群", members: "会员数",
    at_risk: "流失风险会员", member: "会员", cause: "可能原因", recency_days: "未消费天数",
    wake_up: "唤醒效果（实验组 vs 对照组）", trigger: "触发规则", treated: "实验组人数",
    treated_rate: "实验组转化率", control: "对照组人数", control_rate: "对照组转化率", uplift: "提升",
    mall: "积分商城销售", "mall.items_sold": "售出件数", "mall.points_taken": "收取积分",
    "mall.cash_taken_fen": "收取现金（分）", "mall.coupons_issued": "已发券",
    "mall.coupons_redeemed": "已核销券", "mall.coupons_expired": "已过期券",
    "mall.coupon_liability_fen": "未核销券负债（分）",
    partnerships: "合作建议（近30天跨店会员）", offer: "建议", offering: "发起商户", audience: "面向会员所属",
    lift: "提升度", joint_offer: "联合优惠", related_product_offer: "关联商品优惠",
  },
  en: {
    title: "Coalition console", logout: "Log out", login: "Log in",
    login_failed: "Login failed: check the id and key", merchant_login: "Merchant login",
    operator_login: "Operator login", merchant_id: "Merchant id",
    admin_key: "Admin key (an API key with the admin scope)", operator_name: "Operator",
    password: "Password", shop: "Shop", today: "Today", totals: "All time",
    trend: "Last two weeks", campaigns: "Campaign budget burn", alerts: "Alerts",
    live: "Live, updated", pool: "Pool", budget: "Budget", granted: "Granted", burn: "Burn",
    "today.issued": "Points issued", "today.redeemed": "Points redeemed",
    "today.earns": "Earning purchases", "today.redemptions": "Redemptions",
    "today.enrolled": "New members", "today.active_members": "Active members",
    "today.participation_rate_bps": "Participation rate",
    "today.redemption_rate_bps": "Redemption rate", "totals.members": "Members",
    "totals.issued": "Issued", "totals.redeemed": "Redeemed", "totals.expired": "Expired",
    "totals.clawed_back": "Clawed back", "totals.outstanding": "Outstanding (liability)",
    district: "District", flows: "Flows between shops (last 30 days)",
    positions: "Net positions against net-debit caps", merchant: "Merchant", status: "Status",
    net_debit: "Unsettled net debit (fen)", cap: "Cap (fen)", cap_used: "Used",
    batches: "Settlement batches", period: "Period", records: "Records", value: "Value (fen)",
    fee: "Fee (fen)", decision: "Decision", approve: "Approve", reject: "Reject",
    reject_reason: "Reason for rejecting", breakage: "Breakage", issuer: "Issuer",
    points: "Points", operator_share: "Operator's share (fen)",
    forbidden: "You may not see this page", issued: "Issued", redeemed: "Redeemed",
    expired: "Expired", no_cap: "no cap",
    campaign_roi: "Campaign ROI (last 30 days)", campaign: "Campaign",
    points_cost_fen: "Points cost (fen)", participating_revenue_fen: "Participants' revenue (fen)",
    roi_vs_control: "ROI vs control group", roi_vs_baseline: "ROI vs baseline",
    segments: "Member segments", segment: "Segment", members: "Members",
    at_risk: "Members at risk", member: "Member", cause: "Likely cause",
    recency_days: "Days since last purchase", wake_up: "Wake-up results (treated vs control)",
    trigger: "Trigger", treated: "Treated", treated_rate: "Treated conversion",
    control: "Control", control_rate: "Control conversion", uplift: "Uplift",
    mall: "Mall sales", "mall.items_sold": "Items sold", "mall.points_taken": "Points taken",
    "mall.cash_taken_fen": "Cash taken (fen)", "mall.coupons_issued": "Coupons issued",
    "mall.coupons_redeemed": "Coupons redeemed", "mall.coupons_expired": "Coupons expired",
    "mall.coupon_liability_fen": "Coupon liability (fen)",
    partnerships: "Suggested partnerships (shared members, last 30 days)", offer: "Offer",
    offering: "By", audience: "To members of", lift: "Lift",
    joint_offer: "Joint offer", related_product_offer: "Related-product offer",
  },
};

const body = document.body;
const lang = body.dataset.lang in TEXT ? body.dataset.lang : "zh";
const t = (key) => TEXT[lang][key] ?? key;
if (new URLSearchParams(location.search).has("lang")) {
  document.cookie = `lang=${lang}; path=/; SameSite=Strict`;
}
for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);

const percent = (bps) => `${(bps / 100).toFixed(2)}%`;

function cell(row, text, attrs = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  for (const [k, v] of Object.entries(attrs)) td.setAttribute(k, v);
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render) {
  tbody.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    render(tr, item);
    tbody.appendChild(tr);
  }
}

function showFigures(data) {
  for (const el of document.querySelectorAll("[data-figure]")) {
    const [group, key] = el.dataset.figure.split(".");
    const value = data[group]?.[key];
    if (value === undefined) continue;
    el.dataset.value = String(value);
    el.textContent = key.endsWith("_bps") ? percent(value) : String(value);
  }
}

function showAlerts(list) {
  const ul = document.getElementById("alerts");
  if (!ul) return;
  ul.replaceChildren();
  for (const a of list) {
    const li = document.createElement("li");
    li.className = `alert ${a.severity}`;
    li.textContent = `${a.raised_at} ${a.rule_id}: ${a.message}`;
    ul.appendChild(li);
  }
}

let chart = null;
function chartIn(id) {
  if (!window.echarts) return null;
  if (!chart) chart = window.echarts.init(document.getElementById(id));
  return chart;
}

function showShop(data) {
  showFigures(data);
  fill(document.querySelector("#pools tbody"), data.campaign_pools, (tr, p) => {
    cell(tr, p.pool_id); cell(tr, String(p.budget)); cell(tr, String(p.granted));
    cell(tr, percent(p.burn_bps));
  });
  showInsights(data);
  const c = chartIn("trend-chart");
  if (c) {
    c.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: [t("issued"), t("redeemed"), t("expired")] },
      xAxis: { type: "category", data: data.trend.map((d) => d.day.slice(5)) },
      yAxis: { type: "value" },
      series: ["issued", "redeemed", "expired"].map((k) => ({
        name: t(k), type: "line", smooth: true, data: data.trend.map((d) => d[k]),
      })),
    });
  }
}

const orDash = (bp) => (bp === null ? "—" : percent(bp));

function showInsights(data) {
  fill(document.querySelector("#campaign-roi tbody"), data.campaigns, (tr, c) => {
    tr.dataset.campaign = c.campaign_id;
    cell(tr, c.campaign_id); cell(tr, String(c.points_cost_fen));
    cell(tr, String(c.participating_revenue_fen));
    cell(tr, orDash(c.roi_vs_control_bp)); cell(tr, orDash(c.roi_vs_baseline_bp));
  });
  fill(document.querySelector("#segments tbody"), Object.entries(data.segments).sort(), (tr, [s, n]) => {
    tr.dataset.segment = s;
    cell(tr, s); cell(tr, String(n), { "data-field": "members" });
  });
  fill(document.querySelector("#at-risk tbody"), data.at_risk, (tr, m) => {
    cell(tr, m.member_id); cell(tr, m.segment); cell(tr, m.cause); cell(tr, String(m.recency_days));
  });
  fill(document.querySelector("#triggers tbody"), data.triggers, (tr, r) => {
    tr.dataset.trigger = r.trigger_id;
    cell(tr, r.trigger_id); cell(tr, String(r.treated)); cell(tr, percent(r.treated_rate_bps));
    cell(tr, String(r.control)); cell(tr, percent(r.control_rate_bps)); cell(tr, percent(r.uplift_bps));
  });
}

async function decide(period, decision) {
  let note = "";
  if (decision === "reject") {
    note = window.prompt(t("reject_reason")) || "";
    if (!note) return;
  }
  const out = document.getElementById("decision-result");
  const res = await fetch(`/api/district/batches/${period}/${decision}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Console-Request": "1" },
    body: JSON.stringify({ note }),
  });
  const answer = await res.json();
  out.textContent = res.ok ? `${period}: ${t(answer.decision)} ✓` : answer.message;
  out.dataset.ok = String(res.ok);
}

function showDistrict(data) {
  fill(document.querySelector("#positions tbody"), data.positions, (tr, p) => {
    tr.dataset.merchant = p.merchant_id;
    cell(tr, `${p.name} (${p.merchant_id})`); cell(tr, p.status);
    cell(tr, String(p.net_debit_fen), { "data-field": "net_debit" });
    cell(tr, p.cap_fen === null ? t("no_cap") : String(p.cap_fen));
    const used = cell(tr, p.cap_used_bps === null ? "—" : percent(p.cap_used_bps));
    if (p.cap_used_bps !== null && p.cap_used_bps >= 8000) used.className = "warn";
  });
  fill(document.querySelector("#batches tbody"), data.batches, (tr, b) => {
    tr.dataset.period = b.period;
    cell(tr, b.period); cell(tr, b.status, { "data-field": "status" });
    cell(tr, String(b.record_count ?? "")); cell(tr, String(b.value_fen ?? ""));
    cell(tr, String(b.fee_fen ?? ""));
    const td = cell(tr, b.approved_by ?? "");
    if (b.decidable) {
      for (const d of ["approve", "reject"]) {
        const button = document.createElement("button");
        button.textContent = t(d);
        button.className = `decide ${d}`;
        button.addEventListener("click", () => decide(b.period, d));
        td.appendChild(button);
      }
    }
  });
  fill(document.querySelector("#partnerships tbody"), data.partnerships, (tr, p) => {
    tr.dataset.pair = `${p.offering_id}:${p.audience_id}`;
    cell(tr, t(p.kind)); cell(tr, p.offering_id); cell(tr, p.audience_id);
    cell(tr, `${(p.score_bp / 10000).toFixed(2)}×`); cell(tr, String(p.members));
  });
  fill(document.querySelector("#breakage tbody"), data.breakage, (tr, b) => {
    cell(tr, b.issuer_id); cell(tr, String(b.points)); cell(tr, String(b.value_fen));
    cell(tr, String(b.operator_fen));
  });
  const c = chartIn("flow-chart");
  if (c) {
    const shops = [...new Set(data.flows.flatMap((f) => [f.issuer_id, f.acquirer_id]))];
    c.setOption({
      animation: false,
      tooltip: {},
      series: [{
        type: "graph", layout: "circular", roam: true, label: { show: true },
        edgeSymbol: ["none", "arrow"], edgeLabel: { show: true, formatter: (p) => p.data.value },
        lineStyle: { curveness: 0.2 }, // both directions of a pair stay apart
        data: shops.map((s) => ({ name: s, symbolSize: 40 })),
        // An edge from the issuer (whose points) to the acquirer (where they were spent).
        links: data.flows.map((f) => ({ source: f.issuer_id, target: f.acquirer_id, value: f.value_fen })),
      }],
    });
  }
}

function live(url, show, alertsUrl) {
  const source = new EventSource(url);
  source.onmessage = (event) => {
    show(JSON.parse(event.data));
    document.getElementById("updated").textContent = new Date().toLocaleTimeString(lang);
    fetch(alertsUrl).then((r) => r.json()).then(showAlerts);
  };
}

if (body.dataset.page === "shop") {
  const id = encodeURIComponent(body.dataset.merchant);
  live(`/api/shop/${id}/events`, showShop, `/api/shop/${id}/alerts`);
} else if (body.dataset.page === "district") {
  live("/api/district/events", showDistrict, "/api/district/alerts");
}
