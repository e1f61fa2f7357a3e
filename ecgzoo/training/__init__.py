"""Training: `ecgzoo run`'s runner and its configuration, the run directory, time estimate,
distributed training and the multi-label objectives (ARCHITECTURE.md).
"""
