"""Pure-ML core of shapehint: descriptors, bounds, losses, networks, trainer, inference.

Deliberately imports nothing: the API imports ``models.units`` / ``models.bounds`` /
``models.synthetic`` and must start without torch.
"""
