"""Sweeps: many seeds x settings as one result file per cell, and the shipped presets."""
