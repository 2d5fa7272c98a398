"""LinkedIn Ads: every connected ad account's campaign × day metrics, each sync replacing the days it re-reads."""
