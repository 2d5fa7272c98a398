"""EcoManager (seed 003): each store's orders, hourly 08–20 in the store's time zone, and their
automatic assignment to confirmation agents."""
