"""KPIs: a registry of versioned definitions and the engine that computes them."""
