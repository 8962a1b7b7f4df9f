"""The coalition's central exchange: merchant registry, signed-message checks, cross-merchant
redemption (authorize → hold → capture/void), clearing records and the audit log.

Not built yet: issue 3. The merchant node already has the holds the exchange will drive
(merchant_node.ledger.holds).
"""
