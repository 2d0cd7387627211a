"""The ops' fused kernels (anynet.kernels): each computes its op's pure form, and the buffer engine's
kernel path trains as the reference engine does.

Off a GPU the kernels run through ``numpy_kernel`` (the bodies are C that is also Python); on CuPy the
same tests compile them with CuPy, so the GPU session checks the real kernels.
"""

import numpy as np
import pytest

from anynet import activations, kernels, optimizers
from anynet import backend as B
from anynet.engines import buffer_ops
from anynet.tree import leaves, tree_map

FUSED = [name for name, a in activations.ACTIVATIONS.items() if a.kernel_f is not None]


@pytest.fixture
def compile_kernel(backend):
    """CuPy's compiler on CuPy, else the NumPy stand-in (on host arrays)."""
    if backend == "cupy":
        return B.buffer_ops("cupy").kernel
    return kernels.numpy_kernel


@pytest.fixture
def on(backend, asarray):
    """Host data onto the backend whose kernels are under test (CuPy), else kept on the host."""
    return asarray if backend == "cupy" else np.asarray


@pytest.fixture
def ns(backend):
    """The namespace of the arrays ``on`` makes."""
    return B.namespace_for("cupy" if backend == "cupy" else "numpy")


def test_every_elementwise_activation_with_an_in_place_form_has_kernels():
    for name, act in activations.ACTIVATIONS.items():
        if act.f_out is not None and name not in ("identity", "softmax"):  # z itself; a row-wise op
            assert name in FUSED


@pytest.mark.parametrize("name", FUSED)
def test_activation_kernels_compute_the_pure_forms(name, rng, compile_kernel, on, ns):
    act = activations.get(name)
    special = [0.0, -0.0, 1e-300, -1e-300, 30.0, -30.0, 800.0, -800.0, np.inf, -np.inf, np.nan]
    z = np.concatenate([rng.normal(scale=3, size=200), special])
    g = np.concatenate([rng.normal(size=200), [np.inf, -np.inf, 1.0, -1.0, 2.0, np.nan, 0.0, 1.0, 1.0, np.inf, 1.0]])
    zd, gd = on(z), on(g)
    with np.errstate(all="ignore"):
        y = np.asarray(B.to_numpy(act.f(zd, xp=ns)))
        want = np.asarray(B.to_numpy(act.vjp(zd, on(y), gd, xp=ns)))

    out = on(np.full_like(z, 7.0))
    compile_kernel(act.kernel_f)(zd, out)
    np.testing.assert_allclose(B.to_numpy(out), y, rtol=1e-15, atol=0, equal_nan=True)
    g_out = on(g.copy())
    compile_kernel(act.kernel_vjp)(zd, on(y), g_out)
    np.testing.assert_allclose(B.to_numpy(g_out), want, rtol=1e-15, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", FUSED)
def test_bias_then_activation_is_one_pass_of_both(name, rng, compile_kernel, on, ns):
    act = activations.get(name)
    z = rng.normal(scale=3, size=(7, 5))
    b = rng.normal(size=5)
    with np.errstate(all="ignore"):
        want = np.asarray(B.to_numpy(act.f(on(z + b), xp=ns)))
    zd, yd = on(z.copy()), on(np.full_like(z, 7.0))
    compile_kernel(kernels.bias_then(act.kernel_f))(on(b), zd, yd)
    np.testing.assert_array_equal(B.to_numpy(zd), z + b)  # z keeps the sum, for the backward pass
    np.testing.assert_allclose(B.to_numpy(yd), want, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "opt",
    [optimizers.SGD(), optimizers.SGD(momentum=0.9), optimizers.SGD(momentum=0.9, nesterov=True), optimizers.Adam()],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_optimizer_kernels_take_the_flat_steps(opt, rng, compile_kernel, on, backend):
    """One fused update equals the flat kernel's two to twelve out= passes, per-parameter rates too."""
    ops = B.buffer_ops("cupy" if backend == "cupy" else "numpy")
    n = 50
    p, g = on(rng.normal(size=n)), on(rng.normal(size=n))
    state = opt.flat_state(opt.init([(p, None)], xp=B.namespace_for(ops.name)), lambda tree: ops.copy(tree[0][0]))
    if opt.name == "adam":
        state = (3, on(rng.normal(size=n)), on(np.abs(rng.normal(size=n))))
    elif state is not None:
        state = on(rng.normal(size=n))
    for lr in (0.05, on(rng.uniform(0.01, 0.1, size=n))):
        flat_state, fused_state = tree_map(ops.copy, state), tree_map(ops.copy, state)
        pn_flat, pn_fused = on(np.zeros(n)), on(np.zeros(n))
        flat_state = opt.flat_step(ops, p, pn_flat, ops.copy(g), on(np.zeros(n)), flat_state, lr)
        fused_state = opt.fused_step(compile_kernel(opt.kernel()), p, pn_fused, g, fused_state, lr)
        np.testing.assert_allclose(B.to_numpy(pn_fused), B.to_numpy(pn_flat), rtol=1e-14, atol=1e-15)
        assert (flat_state is None) == (fused_state is None)
        if isinstance(flat_state, tuple):
            assert fused_state[0] == flat_state[0]
        for a, b in zip(leaves(fused_state), leaves(flat_state), strict=True):
            np.testing.assert_allclose(B.to_numpy(a), B.to_numpy(b), rtol=1e-14, atol=1e-15)


@pytest.mark.skip_backend(
    "torch",
    "jax",
    "dask",
    "array_api_strict",
    reason="the kernel path runs where kernels compile: CuPy, and NumPy through the NumPy stand-in",
)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_engines_kernel_path_trains_as_the_reference(monkeypatch, backend, rng, optimizer):
    """With a kernel compiler for the backend (CuPy's own; on the CPU the NumPy stand-in), the
    buffer engine runs every activation and the optimizer as fused kernels, and ends where the
    reference engine does."""
    import anynet

    if backend != "cupy":
        monkeypatch.setitem(buffer_ops.KERNEL_COMPILERS, backend, _counting(kernels.numpy_kernel))
    X = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    options = {"epochs": 5, "batch_size": 8, "seed": 1, "optimizer": optimizer, "verbose": 0, "alpha": 0.01}
    nets = [anynet.Network([4, 6, 5, 3], activation=a, output_activation="softmax", seed=0) for a in ("tanh", "tanh")]
    nets[0].fit(X, y, engine="reference", **options)
    nets[1].fit(X, y, engine="buffer", **options)
    for (Wa, ba), (Wb, bb) in zip(nets[0].layers, nets[1].layers, strict=True):
        np.testing.assert_allclose(B.to_numpy(Wb), B.to_numpy(Wa), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(B.to_numpy(bb), B.to_numpy(ba), rtol=1e-9, atol=1e-12)
    if backend != "cupy":
        assert {"tanh_bias", "tanh_vjp", optimizer} <= _counting.seen


def _counting(compile_kernel):
    """``compile_kernel``, noting the name of each kernel it compiles."""
    _counting.seen = set()

    def compile_and_note(spec):
        _counting.seen.add(spec.name)
        return compile_kernel(spec)

    return compile_and_note
