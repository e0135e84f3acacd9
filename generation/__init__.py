"""ML generation engine: model families, prompt building, tiny model, pipelines and media (no Django here)."""
