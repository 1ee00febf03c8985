"""lasr training recipe: data, model, training, decoding and export in PyTorch.

The Swift engine never imports this package; it only reads what `export.py`
writes (see docs/model-format.md).
"""
