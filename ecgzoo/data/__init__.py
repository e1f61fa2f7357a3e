"""Data: a dataset's records through the preprocessing pipeline, prepared once into arrays, split,
and ECG files given on the command line read as inputs (ARCHITECTURE.md).
"""
