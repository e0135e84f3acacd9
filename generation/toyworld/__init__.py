"""A synthetic world the tiny text-to-video checkpoint learns: one shape, named colours, one motion.

`world` draws the clips and captions; `train` rebuilds the committed `tiny` checkpoint from scratch
(`make tiny-model`).
"""
