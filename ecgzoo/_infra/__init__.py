"""Infrastructure, not public API: strict JSON, the CSV writer, checksummed downloads.

Plugins reach what they need of it through `ecgzoo.plugin_api`; see ARCHITECTURE.md.
"""
