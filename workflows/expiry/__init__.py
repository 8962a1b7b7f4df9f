"""Points expiry on Temporal: reminders first, then expiry to breakage, then delivery."""
