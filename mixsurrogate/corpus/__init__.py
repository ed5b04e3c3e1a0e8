"""Torch-free corpus building: sources, extractors, tokenizer, end-task sets and the store
that experts and proxy runs read."""
