"""Reports: the run's report, its figures, the clinical 12-lead drawing and the HTML viewer (ARCHITECTURE.md).
"""
