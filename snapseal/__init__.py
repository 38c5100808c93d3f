"""snapseal: one sealed, high-quality face crop per person, and nothing else.

The user's top-level folders are this package's subpackages: ``daemon/`` is
``snapseal.daemon``, ``quantize/`` is ``snapseal.quantize``, ``hw/`` is ``snapseal.hw``.
"""

__version__ = "0.1.0"
