"""Evaluation: classification metrics (single- and multi-label), the chance-level check and scoring a
model's outputs (ARCHITECTURE.md).
"""
