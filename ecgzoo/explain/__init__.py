"""Explanations beyond the explainer plugins: beat templates, faithfulness and evidence-removal checks,
explaining inputs too long for one pass (ARCHITECTURE.md).
"""
