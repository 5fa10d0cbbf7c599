"""Extract: land source records in the raw layer as append-only, hashed batches."""
