"""People at the expo: visitor cards, card exchange by consent, leads and meetings."""
