"""Plugin contracts and the registry: records, tasks, lead names, the interfaces every plugin implements,
the hooks and the registry that finds and creates plugins. The first stage of the flow (ARCHITECTURE.md).
"""
