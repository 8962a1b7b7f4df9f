"""Temporal workflows, one folder per family: settlement, points expiry, campaigns.
Not built yet: issues 5 and 6."""
