"""One array namespace for the engine's transforms: numpy arrays, or torch tensors on any
device (the array API standard through ``array_api_compat``), so that the CPU engine and
the torch engine (:mod:`trials.torch_engine`) share one implementation of each model.

Parameters of a model (knots, hazards, arrangement tables) are held as numpy arrays and
moved next to the data with :func:`like`.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, device, is_numpy_array


def namespace(*arrays):
    """The namespace of the arrays: numpy itself for numpy arrays and Python scalars,
    the array-API wrapper of torch for tensors."""
    if all(is_numpy_array(a) or np.isscalar(a) for a in arrays):
        return np
    return array_namespace(*(a for a in arrays if not np.isscalar(a)))


def like(values, reference):
    """``values`` (a numpy array) in the namespace and on the device of ``reference``."""
    if is_numpy_array(reference) or np.isscalar(reference):
        return np.asarray(values)
    xp = array_namespace(reference)
    return xp.asarray(np.asarray(values), device=device(reference))
