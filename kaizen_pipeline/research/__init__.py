"""Research: hype scores, market features, hype-price correlations, signals, risk, portfolio."""
