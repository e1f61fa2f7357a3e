"""Reference plugins of ecgzoo, registered through registry.toml; they use only the public plugin API."""
