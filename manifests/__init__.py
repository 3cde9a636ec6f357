"""Parquet schemas, deterministic WebDataset shards, verification and statistics."""
