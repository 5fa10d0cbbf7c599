"""A generated CRM world with known ground truth, for the demo, tests and benchmarks."""
