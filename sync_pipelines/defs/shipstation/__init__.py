"""ShipStation (seed 000): foundation then content, for every active store."""
