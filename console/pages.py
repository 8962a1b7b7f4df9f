"""The console's HTML: bare pages whose texts and figures console.js fills in (in the chosen
language), from the JSON the page's own stream sends. Nothing here is user-controlled but
the merchant id, which the route has matched against [A-Za-z0-9_.-]."""

from __future__ import annotations

import html

from console.http import Request

LANGUAGES = ("zh", "en")
_TITLE = {"zh": "商圈积分控制台", "en": "Coalition console"}
_LOGOUT = (
    '<form method="post" action="/logout">'
    '<button id="logout" data-i18n="logout">logout</button></form>'
)


def language(request: Request) -> str:
    lang = request.query.get("lang") or request.cookies.get("lang") or "zh"
    return lang if lang in LANGUAGES else "zh"


def _page(lang: str, body: str, page: str, data: dict[str, str] | None = None) -> bytes:
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in (data or {}).items())
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_TITLE[lang]}</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/echarts.min.js" defer></script>
<script src="/static/console.js" defer></script>
</head><body data-page="{page}" data-lang="{lang}" {attrs}>
<header><h1 data-i18n="title">{_TITLE[lang]}</h1>
<nav><a href="?lang=zh" id="lang-zh">中文</a> · <a href="?lang=en" id="lang-en">English</a>
{_LOGOUT if page != "login" else ""}
</nav></header>
<main>{body}</main></body></html>""".encode()


def login(lang: str, failed: bool) -> bytes:
    body = f"""
<p class="error" id="login-failed" {"" if failed else "hidden"} data-i18n="login_failed"></p>
<section class="login">
<form method="post" action="/login" id="merchant-login">
<h2 data-i18n="merchant_login"></h2>
<input type="hidden" name="role" value="merchant">
<label><span data-i18n="merchant_id"></span>
<input name="merchant_id" id="merchant-id" required></label>
<label><span data-i18n="admin_key"></span>
<input name="key" id="merchant-key" type="password" required></label>
<button type="submit" id="merchant-submit" data-i18n="login"></button>
</form>
<form method="post" action="/login" id="operator-login">
<h2 data-i18n="operator_login"></h2>
<input type="hidden" name="role" value="operator">
<label><span data-i18n="operator_name"></span>
<input name="name" id="operator-name" required></label>
<label><span data-i18n="password"></span>
<input name="password" id="operator-password" type="password" required></label>
<button type="submit" id="operator-submit" data-i18n="login"></button>
</form></section>"""
    return _page(lang, body, "login")


def _figure(key: str) -> str:
    return f'<div class="figure"><span data-i18n="{key}"></span><b data-figure="{key}">…</b></div>'


def shop(lang: str, merchant_id: str) -> bytes:
    today = "".join(
        _figure(f"today.{k}")
        for k in (
            "issued",
            "redeemed",
            "earns",
            "redemptions",
            "enrolled",
            "active_members",
            "participation_rate_bps",
            "redemption_rate_bps",
        )
    )
    totals = "".join(
        _figure(f"totals.{k}")
        for k in ("members", "issued", "redeemed", "expired", "clawed_back", "outstanding")
    )
    body = f"""
<h2><span data-i18n="shop"></span> <span id="shop-id">{html.escape(merchant_id)}</span></h2>
<section><h3 data-i18n="today"></h3><div class="figures" id="today">{today}</div></section>
<section><h3 data-i18n="totals"></h3><div class="figures" id="totals">{totals}</div></section>
<section><h3 data-i18n="trend"></h3><div class="chart" id="trend-chart"></div></section>
<section><h3 data-i18n="campaigns"></h3><table id="pools"><thead><tr>
<th data-i18n="pool"></th><th data-i18n="budget"></th><th data-i18n="granted"></th>
<th data-i18n="burn"></th></tr></thead><tbody></tbody></table></section>
{_insights()}
<section><h3 data-i18n="alerts"></h3><ul id="alerts"></ul></section>
<p class="live"><span data-i18n="live"></span> <span id="updated">—</span></p>"""
    return _page(lang, body, "shop", {"merchant": merchant_id})


def _table(table_id: str, title: str, columns: tuple[str, ...]) -> str:
    heads = "".join(f'<th data-i18n="{c}"></th>' for c in columns)
    return (
        f'<section><h3 data-i18n="{title}"></h3><table id="{table_id}"><thead><tr>{heads}'
        "</tr></thead><tbody></tbody></table></section>"
    )


def _insights() -> str:
    """Campaign ROI, segments, at-risk members, triggers' results and mall sales."""
    mall = "".join(
        _figure(f"mall.{k}")
        for k in (
            "items_sold",
            "points_taken",
            "cash_taken_fen",
            "coupons_issued",
            "coupons_redeemed",
            "coupons_expired",
            "coupon_liability_fen",
        )
    )
    return "\n".join(
        (
            _table(
                "campaign-roi",
                "campaign_roi",
                (
                    "campaign",
                    "points_cost_fen",
                    "participating_revenue_fen",
                    "roi_vs_control",
                    "roi_vs_baseline",
                ),
            ),
            _table("segments", "segments", ("segment", "members")),
            _table("at-risk", "at_risk", ("member", "segment", "cause", "recency_days")),
            _table(
                "triggers",
                "wake_up",
                ("trigger", "treated", "treated_rate", "control", "control_rate", "uplift"),
            ),
            f'<section><h3 data-i18n="mall"></h3><div class="figures" id="mall">{mall}</div>'
            "</section>",
        )
    )


def district(lang: str, operator: str) -> bytes:
    body = f"""
<h2><span data-i18n="district"></span> <small>{html.escape(operator)}</small></h2>
<section><h3 data-i18n="flows"></h3><div class="chart" id="flow-chart"></div></section>
{_table("partnerships", "partnerships", ("offer", "offering", "audience", "lift", "members"))}
<section><h3 data-i18n="positions"></h3><table id="positions"><thead><tr>
<th data-i18n="merchant"></th><th data-i18n="status"></th><th data-i18n="net_debit"></th>
<th data-i18n="cap"></th><th data-i18n="cap_used"></th></tr></thead><tbody></tbody></table>
</section>
<section><h3 data-i18n="batches"></h3><table id="batches"><thead><tr>
<th data-i18n="period"></th><th data-i18n="status"></th><th data-i18n="records"></th>
<th data-i18n="value"></th><th data-i18n="fee"></th><th data-i18n="decision"></th>
</tr></thead><tbody></tbody></table><p id="decision-result"></p></section>
<section><h3 data-i18n="breakage"></h3><table id="breakage"><thead><tr>
<th data-i18n="issuer"></th><th data-i18n="points"></th><th data-i18n="value"></th>
<th data-i18n="operator_share"></th></tr></thead><tbody></tbody></table></section>
<section><h3 data-i18n="alerts"></h3><ul id="alerts"></ul></section>
<p class="live"><span data-i18n="live"></span> <span id="updated">—</span></p>"""
    return _page(lang, body, "district")


def forbidden(lang: str) -> bytes:
    return _page(lang, '<p class="error" id="forbidden" data-i18n="forbidden"></p>', "forbidden")
