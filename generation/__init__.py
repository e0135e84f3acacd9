"""ML generation engine: model families, prompt building, tiny model, pipelines and media (no Django here).

Offline mode is set here, once for every process that loads a model: every such process imports
this package before diffusers, transformers or sentence-transformers, and huggingface_hub reads
the variable once, when it is first imported. No model hub is reachable where this runs; fail fast
instead of hanging on the network. `setdefault` lets an explicit setting win.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
