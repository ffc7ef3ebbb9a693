"""Data: degradation (HR -> LR), datasets."""
