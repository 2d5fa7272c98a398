"""Maystro (seed 003): the shipping status of our orders, every 6 hours and by webhook, through a
status mapping users extend without code."""
