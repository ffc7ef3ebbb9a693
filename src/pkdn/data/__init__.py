"""Data: degradation (HR -> LR), dataset preparation, the training Dataset."""
