"""The ``lbfgs`` solver: scipy's L-BFGS-B over a network's flattened parameters, each loss and
gradient computed by the core on the network's backend (one transfer of the parameter vector each
way per evaluation)."""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any

import numpy as np
import scipy.optimize

from .. import activations, core, intake, losses
from .. import backend as B
from ..network import Network


def minimize(
    net: Network,
    X: Any,
    T: np.ndarray,
    sw: np.ndarray | None,
    *,
    output: str,
    loss: str,
    alpha: float,
    max_iter: int,
    max_fun: int,
    tol: float,
) -> tuple[Any, list]:
    """Minimise the ``loss`` (with the L2 penalty ``alpha``) of ``net`` with the output activation
    ``output`` on ``X``, the targets ``T`` and the row weights ``sw``, from its current parameters.
    Returns scipy's result and the parameters it found, ``[(W, b), ...]`` on the network's place."""
    spec = net.spec
    xp, dtype = spec.xp, spec.dtype_name
    Xd, Td = intake.placed(X, spec, "X"), intake.placed(T, spec, "y")
    Wd = None if sw is None else intake.placed(sw.reshape(-1, 1), spec, "sample_weight")
    acts = [activations.get(net.activation)] * (len(net.sizes) - 2) + [activations.get(output)]
    lf = losses.get(loss)
    shapes = [W.shape for W in net.weights] + [b.shape for b in net.biases]
    bounds = [0, *accumulate(math.prod(s) for s in shapes)]
    n_layers = len(net.weights)

    def unpack(theta: np.ndarray) -> list:
        flat = B.from_numpy(theta.astype(dtype), spec.backend, spec.native)
        parts = [xp.reshape(flat[bounds[i] : bounds[i + 1]], s) for i, s in enumerate(shapes)]
        return list(zip(parts[:n_layers], parts[n_layers:], strict=True))

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grads, _ = core.loss_and_grads(unpack(theta), Xd, Td, acts=acts, loss=lf, alpha=alpha, w=Wd, xp=xp)
        pieces = [xp.reshape(gw, (-1,)) for gw, _ in grads] + [gb for _, gb in grads]
        host = B.to_numpy(xp.concat([*pieces, xp.reshape(value, (1,))]))  # one transfer back
        return float(host[-1]), host[:-1].astype(np.float64)

    theta0 = np.concatenate([B.to_numpy(a).ravel() for a in net.weights + net.biases]).astype(np.float64)
    result = scipy.optimize.minimize(
        loss_and_grad,
        theta0,
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
    )
    return result, unpack(result.x)
