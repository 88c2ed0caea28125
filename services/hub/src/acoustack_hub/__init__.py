"""acoustack hub: the central side of a fleet (what every device sends, stored once)."""
