"""Google Ads: every connected customer's campaign × day metrics, each sync replacing the days it re-reads."""
