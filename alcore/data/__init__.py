"""Datasets: loading (bundled, Keras, idx folders, .npz), checks, splitting into pool and test."""
