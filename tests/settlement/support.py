"""Random clearing records, the Python reference of the obligations aggregate, the example
budget: what the settlement tests share."""

from __future__ import annotations

import os
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from settlement.obligations import Obligation
from settlement.records import ClearingRecord

EXAMPLES = int(os.environ.get("COALITION_HYPOTHESIS_EXAMPLES", "40"))


def examples(share: int = 1) -> settings:
    """`EXAMPLES // share` examples: database round trips need fewer than pure functions."""
    return settings(
        max_examples=max(1, EXAMPLES // share),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


# Ids that sort differently by code point than under a locale collation (case, punctuation).
MERCHANTS = ("tea", "noodles", "salon", "Bakery", "b-2", "b_2", "b.2", "Z")
merchants = st.sampled_from(MERCHANTS)
auth_ids = st.text("aAbB09-_.:", min_size=1, max_size=8)


@st.composite
def clearing_records(
    draw: st.DrawFn, period: str = "2026-11-24", max_size: int = 30, prefix: str = ""
) -> list[ClearingRecord]:
    """Records with distinct authorization ids; values up to 10¹² fen, fees within 0..value."""
    ids = draw(st.lists(auth_ids, unique=True, max_size=max_size))
    found = []
    for i, auth in enumerate(ids):
        value = draw(st.integers(0, 10**12) | st.integers(0, 5_000))
        found.append(
            ClearingRecord(
                authorization_id=prefix + auth,
                clearing_id=f"c-{prefix}{i}",
                issuer_id=draw(merchants),
                acquirer_id=draw(merchants),
                points=draw(st.integers(1, 10**9)),
                value_fen=value,
                fee_fen=draw(st.integers(0, value)),
                rate_version=draw(st.integers(1, 5)),
                settlement_period=period,
            )
        )
    return found


def reference_obligations(records: list[ClearingRecord]) -> list[Obligation]:
    """The Python reference of the SQL aggregate: sums per (issuer, acquirer), sorted."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in records:
        s = sums[r.issuer_id, r.acquirer_id]
        s[0] += r.points
        s[1] += r.value_fen
        s[2] += r.fee_fen
        s[3] += 1
    return [Obligation(i, a, *s) for (i, a), s in sorted(sums.items())]
