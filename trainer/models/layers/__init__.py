"""Layers the components are built from: 3-D convs, norms, activations, pools, blocks, MLPs.

Attribute names follow VisionCore's module tree (``components.conv.conv.parametrizations
.weight.original``, ``gamma``, ``ongain``...) so that state dicts map one to one.
"""
