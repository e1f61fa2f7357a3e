"""Models: checkpoints, pretrained weights, facts, fine-tuning and export (ARCHITECTURE.md).
"""
