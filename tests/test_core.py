"""The pure core, activations, losses and initialisers: gradients against central finite differences
in float64, numerical stability at extreme logits, purity (inputs never mutated), seeded init."""

import itertools

import array_api_compat.numpy as npx
import numpy as np
import pytest

import anynet
from anynet import activations, core, losses, optimizers
from anynet import init as initialisers

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity", "exp"]
EPS = 1e-6
#: entries checked per parameter array: a random subset keeps the dask run short
N_PROBES = 8


def host_layers(rng, sizes, bias):
    return [(rng.normal(0, 0.8, (a, b)), rng.normal(0, 0.5, b) if bias else None) for a, b in itertools.pairwise(sizes)]


def put(layers, asarray):
    return [(asarray(W), None if b is None else asarray(b)) for W, b in layers]


def acts_for(sizes, hidden, output):
    return tuple([activations.get(hidden)] * (len(sizes) - 2) + [activations.get(output)])


def targets(rng, loss, n, n_out):
    if loss == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out, n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, n_out)).astype(float)
    if loss == "poisson":
        return rng.poisson(1.5, (n, n_out)).astype(float)  # counts, zeros among them
    return rng.normal(0, 1, (n, n_out))


def check_gradients(xp, asarray, layers, X, t, *, acts, loss, alpha=0.0, w=None, seed=0):
    """Backprop's gradients, on the backend under test, at a random subset of entries against central
    differences of the loss.

    The differences are taken on the host with NumPy (one device round trip per test instead of one
    per probe, which Dask cannot afford), from ``forward`` and the loss's value only, plus the L2
    penalty written out here, so they are independent of ``backward``; the activation and loss tests
    below check that every backend's forward values agree with NumPy's.
    """
    lf = losses.get(loss)
    wd = None if w is None else asarray(w)
    _, grads, _ = core.loss_and_grads(
        put(layers, asarray), asarray(X), asarray(t), acts=acts, loss=lf, alpha=alpha, w=wd, xp=xp
    )
    # scikit-learn's penalty: over n, or over the total weight for weighted rows
    per = X.shape[0] if w is None else float(np.sum(w))

    def value(host):
        y, cache = core.forward(host, X, acts=acts, xp=npx)
        v = float(lf.value(cache[-1][1], y, t, xp=npx, w=w))
        return v + 0.5 * alpha / per * sum(float(np.sum(W * W)) for W, _ in host)

    rng = np.random.default_rng(seed)
    for i, layer in enumerate(layers):
        for j, p in enumerate(layer):
            if p is None:
                assert grads[i][j] is None
                continue
            analytic = anynet.to_numpy(grads[i][j])
            assert analytic.shape == p.shape
            picks = [np.unravel_index(k, p.shape) for k in rng.choice(p.size, min(N_PROBES, p.size), replace=False)]
            numeric = []
            for idx in picks:
                sides = []
                for sign in (1, -1):
                    moved = [[None if q is None else q.copy() for q in lay] for lay in layers]
                    moved[i][j][idx] += sign * EPS
                    sides.append(value(moved))
                numeric.append((sides[0] - sides[1]) / (2 * EPS))
            got = np.array([analytic[idx] for idx in picks])
            np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8, err_msg=f"layer {i}, {'Wb'[j]}")


SHAPES = {1: [3, 2], 2: [3, 4, 2], 3: [3, 4, 3, 2]}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("act", [*ELEMENTWISE, "softmax"])
def test_gradients_every_activation(xp, asarray, act, depth, bias):
    rng = np.random.default_rng(depth * 10 + bias)
    sizes = SHAPES[depth]
    # softmax and exp are output activations (exp of exp overflows); half_sse is not fused, so their
    # Jacobians are exercised.
    acts = acts_for(sizes, "tanh" if act in ("softmax", "exp") else act, act)
    X, t = rng.normal(0, 1, (6, 3)), targets(rng, "half_sse", 6, 2)
    check_gradients(xp, asarray, host_layers(rng, sizes, bias), X, t, acts=acts, loss="half_sse")


LOSS_OUTPUT = {
    "half_sse": "sigmoid",
    "mse": "identity",
    "half_mse": "softplus",
    "binary_cross_entropy": "sigmoid",
    "cross_entropy": "softmax",
    "poisson": "exp",
}


def test_every_registered_activation_and_loss_has_its_gradient_checked():
    assert set(activations.ACTIVATIONS) == {*ELEMENTWISE, "softmax"}
    assert set(losses.LOSSES) == set(LOSS_OUTPUT)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("loss", list(LOSS_OUTPUT))
def test_gradients_every_loss(xp, asarray, loss, depth, bias):
    rng = np.random.default_rng(100 + depth * 10 + bias)
    sizes = SHAPES[depth]
    acts = acts_for(sizes, "tanh", LOSS_OUTPUT[loss])
    X, t = rng.normal(0, 1, (6, 3)), targets(rng, loss, 6, 2)
    check_gradients(xp, asarray, host_layers(rng, sizes, bias), X, t, acts=acts, loss=loss)


@pytest.mark.parametrize("loss", ["half_mse", "cross_entropy"])
def test_gradients_with_l2_penalty(xp, asarray, loss):
    rng = np.random.default_rng(7)
    sizes = SHAPES[2]
    acts = acts_for(sizes, "tanh", LOSS_OUTPUT[loss])
    X, t = rng.normal(0, 1, (5, 3)), targets(rng, loss, 5, 2)
    check_gradients(xp, asarray, host_layers(rng, sizes, True), X, t, acts=acts, loss=loss, alpha=0.3)


@pytest.mark.parametrize("loss", list(LOSS_OUTPUT))
def test_gradients_with_sample_weights_and_l2_penalty(xp, asarray, loss):
    rng = np.random.default_rng(11)
    sizes = SHAPES[2]
    acts = acts_for(sizes, "tanh", LOSS_OUTPUT[loss])
    X, t = rng.normal(0, 1, (6, 3)), targets(rng, loss, 6, 2)
    w = np.array([[0.5], [2.0], [0.0], [1.0], [3.0], [0.25]])
    check_gradients(xp, asarray, host_layers(rng, sizes, True), X, t, acts=acts, loss=loss, alpha=0.3, w=w)


@pytest.mark.parametrize("loss", list(LOSS_OUTPUT))
def test_integer_sample_weights_are_repeated_rows(xp, asarray, loss):
    # scikit-learn's meaning: weight k is the row k times over, weight 0 is the row left out, L2 included
    rng = np.random.default_rng(12)
    sizes = SHAPES[2]
    acts = acts_for(sizes, "tanh", LOSS_OUTPUT[loss])
    X, t = rng.normal(0, 1, (6, 3)), targets(rng, loss, 6, 2)
    counts = np.array([1, 3, 0, 2, 1, 4])
    layers = put(host_layers(rng, sizes, True), asarray)
    lf = losses.get(loss)
    v_w, g_w, _ = core.loss_and_grads(
        layers, asarray(X), asarray(t), acts=acts, loss=lf, alpha=0.2, w=asarray(counts[:, None]), xp=xp
    )
    Xr, tr = np.repeat(X, counts, axis=0), np.repeat(t, counts, axis=0)
    v_r, g_r, _ = core.loss_and_grads(layers, asarray(Xr), asarray(tr), acts=acts, loss=lf, alpha=0.2, xp=xp)
    assert float(v_w) == pytest.approx(float(v_r), rel=1e-12)
    for (gw_w, gb_w), (gw_r, gb_r) in zip(g_w, g_r, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(gw_w), anynet.to_numpy(gw_r), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(anynet.to_numpy(gb_w), anynet.to_numpy(gb_r), rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------- activations


def apply(name, z, xp, asarray):
    return anynet.to_numpy(activations.get(name).f(asarray(z), xp=xp))


def sigmoid_ref(z):
    return 1 / (1 + np.exp(-z))


REFERENCE = {
    "sigmoid": sigmoid_ref,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "identity": lambda z: z,
    "exp": np.exp,
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True),
}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_activation_values(xp, asarray, name):
    z = np.linspace(-8, 8, 24).reshape(6, 4)
    np.testing.assert_allclose(apply(name, z, xp, asarray), REFERENCE[name](z), rtol=1e-12, atol=1e-15)


def test_sigmoid_is_stable_for_huge_inputs(xp, asarray):
    # pytest turns any overflow RuntimeWarning into an error.
    z = np.array([[-5000.0, -1000.0, 0.0, 1000.0, 5000.0]])
    np.testing.assert_array_equal(apply("sigmoid", z, xp, asarray), [[0.0, 0.0, 0.5, 1.0, 1.0]])


def test_softplus_and_softmax_are_stable_for_huge_inputs(xp, asarray):
    z = np.array([[-5000.0, 1000.0, 5000.0]])
    np.testing.assert_allclose(apply("softplus", z, xp, asarray), [[0.0, 1000.0, 5000.0]], rtol=1e-15)
    p = apply("softmax", np.array([[1000.0, -1000.0, 1000.0], [5000.0, 0.0, 0.0]]), xp, asarray)
    np.testing.assert_allclose(p, [[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], atol=1e-300)


def test_activation_names_and_aliases():
    assert activations.get("logistic").name == "sigmoid"
    assert activations.get("linear").name == "identity"
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*'relu'"):
        activations.get("swish")


# --------------------------------------------------------------------------- losses


def loss_value(name, z, t, xp, asarray, output):
    zd = asarray(z)
    y = activations.get(output).f(zd, xp=xp)
    return float(anynet.to_numpy(losses.get(name).value(zd, y, asarray(t), xp=xp)))


def test_loss_values_match_their_formulas(xp, asarray, rng):
    z = rng.normal(0, 2, (5, 3))
    t = rng.normal(0, 1, (5, 3))
    d = z - t
    assert loss_value("half_sse", z, t, xp, asarray, "identity") == pytest.approx(0.5 * np.sum(d**2), rel=1e-12)
    assert loss_value("mse", z, t, xp, asarray, "identity") == pytest.approx(np.mean(d**2), rel=1e-12)
    assert loss_value("half_mse", z, t, xp, asarray, "identity") == pytest.approx(0.5 * np.sum(d**2) / 5, rel=1e-12)
    tb = rng.integers(0, 2, (5, 3)).astype(float)
    p = sigmoid_ref(z)
    bce = -np.sum(tb * np.log(p) + (1 - tb) * np.log(1 - p)) / 5
    assert loss_value("binary_cross_entropy", z, tb, xp, asarray, "sigmoid") == pytest.approx(bce, rel=1e-12)
    tc = np.eye(3)[rng.integers(0, 3, 5)]
    ce = -np.sum(tc * np.log(REFERENCE["softmax"](z))) / 5
    assert loss_value("cross_entropy", z, tc, xp, asarray, "softmax") == pytest.approx(ce, rel=1e-12)
    # scikit-learn's half Poisson deviance, its constant term included: Σ xlogy(t, t/y) - t + y, over n
    tp = rng.poisson(2.0, (5, 3)).astype(float)
    yp = np.exp(z)
    xlogy = np.where(tp > 0, tp * np.log(np.where(tp > 0, tp, 1) / yp), 0.0)
    assert loss_value("poisson", z, tp, xp, asarray, "exp") == pytest.approx(np.sum(xlogy - tp + yp) / 5, rel=1e-12)


def test_weighted_losses_are_weighted_means(xp, asarray, rng):
    z, t = rng.normal(0, 1, (5, 2)), rng.normal(0, 1, (5, 2))
    w = np.array([[1.0], [0.0], [2.5], [0.5], [1.0]])
    d2 = (z - t) ** 2

    def weighted(name, zz, tt):
        zd = asarray(zz)
        lf = losses.get(name)
        y = activations.get(lf.output or "identity").f(zd, xp=xp)
        return float(anynet.to_numpy(lf.value(zd, y, asarray(tt), xp=xp, w=asarray(w))))

    assert weighted("half_mse", z, t) == pytest.approx(0.5 * np.sum(w * d2) / w.sum(), rel=1e-12)
    assert weighted("mse", z, t) == pytest.approx(np.sum(w * d2) / (w.sum() * 2), rel=1e-12)
    assert weighted("half_sse", z, t) == pytest.approx(0.5 * np.sum(w * d2), rel=1e-12)  # a sum stays a sum
    tc = np.eye(2)[[0, 1, 1, 0, 1]]
    log_p = np.log(REFERENCE["softmax"](z))
    assert weighted("cross_entropy", z, tc) == pytest.approx(-np.sum(w * tc * log_p) / w.sum(), rel=1e-12)


def test_half_sse_gradient_is_summed_not_averaged(xp, asarray, rng):
    # lr=1 on the summed gradient is the seed's update; a mean would shrink its step by n.
    y, t = rng.random((4, 1)), rng.random((4, 1))
    grad = losses.get("half_sse").grad_y(asarray(y), asarray(t), xp=xp)
    np.testing.assert_allclose(anynet.to_numpy(grad), y - t, rtol=1e-15)


def test_cross_entropies_are_finite_from_huge_logits(xp, asarray):
    z = np.array([[1000.0], [-1000.0], [5000.0], [-5000.0]])
    t = np.array([[0.0], [0.0], [1.0], [1.0]])
    # -t log σ(z) - (1-t) log(1-σ(z)) = logaddexp(0, z) - t z, exact for any z
    expected = np.sum(np.logaddexp(0, z) - t * z) / 4
    assert loss_value("binary_cross_entropy", z, t, xp, asarray, "sigmoid") == pytest.approx(expected, rel=1e-12)
    zc = np.array([[1000.0, -1000.0, 0.0], [0.0, 5000.0, -5000.0]])
    tc = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert loss_value("cross_entropy", zc, tc, xp, asarray, "softmax") == pytest.approx((2000 + 10000) / 2, rel=1e-12)
    # the fused gradients (y - t)/n stay finite and exact: σ and softmax saturate to exactly 0 and 1 here
    expected_grads = [
        ("binary_cross_entropy", z, t, "sigmoid", np.array([[1.0], [0.0], [0.0], [-1.0]]) / 4),
        ("cross_entropy", zc, tc, "softmax", np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]]) / 2),
    ]
    for name, zz, tt, out, want in expected_grads:
        y = activations.get(out).f(asarray(zz), xp=xp)
        grad = anynet.to_numpy(losses.get(name).grad_z(y, asarray(tt), xp=xp))
        np.testing.assert_allclose(grad, want, atol=1e-300)


def test_loss_names_and_aliases():
    assert losses.get("bce").name == "binary_cross_entropy"
    assert losses.get("log_loss").name == "cross_entropy"
    assert losses.get("sse").name == "half_sse"
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'mse'"):
        losses.get("hinge")


# --------------------------------------------------------------------------- initialisers


def test_uniform_init_is_the_seeds_recipe(backend):
    net = anynet.Network([3, 4, 2], init="uniform", seed=5, dtype="float64")
    r = np.random.default_rng(5)
    expected = []
    for n_in, n_out in [(3, 4), (4, 2)]:
        expected += [2 * r.random((n_in, n_out)) - 1, 2 * r.random(n_out) - 1]
    got = [anynet.to_numpy(a) for layer in zip(net.weights, net.biases, strict=True) for a in layer]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("init", ["uniform", "glorot", "he"])
def test_same_seed_gives_bit_identical_weights_on_every_backend(backend, init, dtype):
    here = anynet.Network([3, 5, 2], init=init, seed=11, dtype=dtype)
    ref = anynet.Network([3, 5, 2], init=init, seed=11, dtype=dtype, backend="numpy")
    assert here.backend == backend
    for a, b in zip(here.weights + here.biases, ref.weights + ref.biases, strict=True):
        got = anynet.to_numpy(a)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, b)


def test_different_seeds_give_different_weights():
    a = anynet.to_numpy(anynet.Network([3, 4, 1], seed=1).weights[0])
    b = anynet.to_numpy(anynet.Network([3, 4, 1], seed=2).weights[0])
    assert not np.array_equal(a, b)


def test_glorot_and_he_scales():
    rng = np.random.default_rng(0)
    W, b = initialisers.glorot(rng, 300, 200)
    limit = np.sqrt(6 / 500)
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit
    np.testing.assert_array_equal(b, 0.0)
    W, b = initialisers.he(rng, 400, 300)
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    np.testing.assert_array_equal(b, 0.0)
    W, b = initialisers.uniform(rng, 300, 200)
    assert -1 <= W.min() < -0.99
    assert 0.99 < W.max() < 1


def test_unknown_init_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown init 'orthogonal'.*'glorot'"):
        anynet.Network([2, 1], init="orthogonal")


# --------------------------------------------------------------------------- purity


def snapshot(tree):
    return [None if a is None else anynet.to_numpy(a).copy() for layer in tree for a in layer]


def assert_same(before, tree):
    for a, b in zip(before, snapshot(tree), strict=True):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_core_does_not_mutate_its_inputs(xp, asarray, rng, bias):
    layers = put(host_layers(rng, [3, 4, 2], bias), asarray)
    X, t = asarray(rng.normal(size=(5, 3))), asarray(rng.normal(size=(5, 2)))
    acts = acts_for([3, 4, 2], "tanh", "sigmoid")
    before, before_x, before_t = snapshot(layers), anynet.to_numpy(X).copy(), anynet.to_numpy(t).copy()
    y, cache = core.forward(layers, X, acts=acts, xp=xp)
    grads = core.backward(layers, cache, y - t, acts=acts, xp=xp)
    grads_before = snapshot(grads)
    core.loss_and_grads(layers, X, t, acts=acts, loss=losses.get("mse"), alpha=0.1, xp=xp)
    new = core.update(layers, grads, lr=0.5)
    core.predict(layers, X, acts=acts, xp=xp)
    assert_same(before, layers)
    assert_same(grads_before, grads)
    np.testing.assert_array_equal(anynet.to_numpy(X), before_x)
    np.testing.assert_array_equal(anynet.to_numpy(t), before_t)
    # update returns new arrays with the step applied
    for (W, _), (gw, _), (W2, _) in zip(layers, grads, new, strict=True):
        assert W2 is not W
        np.testing.assert_allclose(
            anynet.to_numpy(W2), anynet.to_numpy(W) - 0.5 * anynet.to_numpy(gw), rtol=1e-15, atol=1e-15
        )


@pytest.mark.parametrize(
    "opt", [optimizers.SGD(momentum=0.9), optimizers.SGD(momentum=0.9, nesterov=True), optimizers.Adam()]
)
def test_optimizers_do_not_mutate_params_grads_or_state(xp, asarray, rng, opt):
    layers = put(host_layers(rng, [3, 4, 2], True), asarray)
    grads = put(host_layers(rng, [3, 4, 2], True), asarray)
    state = opt.init(layers, xp=xp)
    layers1, state1 = opt.step(layers, grads, state, 0.1, xp=xp)
    before = (snapshot(layers), snapshot(grads), snapshot(layers1))
    layers2, _ = opt.step(layers1, grads, state1, 0.1, xp=xp)
    assert_same(before[0], layers)
    assert_same(before[1], grads)
    assert_same(before[2], layers1)
    assert not np.array_equal(before[2][0], anynet.to_numpy(layers2[0][0]))
