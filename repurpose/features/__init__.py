"""Per-second multimodal features: extractor backends, the Parquet shard contract, caching."""
