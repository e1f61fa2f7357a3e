"""Serving: what takes a finished run (a run folder or pretrained `MODEL:TAG`): predict, explain a whole
recording window by window, evaluate on a dataset, publish as weights (ARCHITECTURE.md).
"""
