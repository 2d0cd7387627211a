"""Optimizers behind their registry: an optimizer registered from outside anynet (RMSprop, below)
trains on every engine that serves the backend under test, equals the reference engine there, and
saves, loads and resumes; ``get`` and ``fit`` refuse options an optimizer does not take, and each
optimizer refuses its own bad settings."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import tol

import anynet
from anynet import activations, engines, losses, optimizers
from anynet.optimizers import LikeParams
from anynet.tree import tree_map


def _zero(value):
    return isinstance(value, (int, float)) and value == 0


@dataclasses.dataclass(frozen=True)
class RMSprop:
    """RMSprop as torch.optim.RMSprop writes it: ``ms = rho*ms + (1-rho)*g*g``, ``u = lr*g/(sqrt(ms)+eps)``,
    then ``W -= u``, or with momentum ``v = momentum*v + u``, ``W -= v``. ``momentum`` may be an array
    of one value per member of a stack, as SGD's."""

    rho: float = 0.9
    epsilon: float = 1e-8
    momentum: float = 0.0
    name: str = dataclasses.field(default="rmsprop", init=False)

    def __post_init__(self):
        if not 0 <= self.rho < 1:
            msg = f"RMSprop's rho must be a number in [0, 1), got {self.rho!r}"
            raise ValueError(msg)

    def state_layout(self, shapes):
        return (LikeParams("mean square"), None if _zero(self.momentum) else LikeParams("velocity"))

    def init(self, layers, *, xp):
        return (tree_map(xp.zeros_like, layers), None if _zero(self.momentum) else tree_map(xp.zeros_like, layers))

    def step(self, layers, grads, state, lr, *, xp):
        ms, v = state
        rho, eps, mu = self.rho, self.epsilon, self.momentum
        ms = tree_map(lambda s, g: rho * s + (1 - rho) * (g * g), ms, grads)
        u = tree_map(lambda g, s: lr * g / (xp.sqrt(s) + eps), grads, ms)
        if v is None:
            return tree_map(lambda w, u: w - u, layers, u), (ms, None)
        v = tree_map(lambda v, u: mu * v + u, v, u)
        return tree_map(lambda w, v: w - v, layers, v), (ms, v)

    # the flat-buffer forms: the pure step's order of operations, over whole buffers

    def flat_state(self, state, pack):
        ms, v = state
        return (pack(ms), None if v is None else pack(v))

    def tree_state(self, fstate, views):
        ms, v = fstate
        return (views(ms), None if v is None else views(v))

    def flat_step(self, ops, p, pn, g, s, fstate, lr):
        ms, v = fstate
        ops.multiply(g, g, out=s)
        ops.multiply(s, 1 - self.rho, out=s)
        ops.multiply(ms, self.rho, out=ms)
        ops.add(ms, s, out=ms)
        ops.sqrt(ms, out=s)
        ops.add(s, self.epsilon, out=s)
        ops.multiply(g, lr, out=g)
        ops.divide(g, s, out=g)
        if v is None:
            ops.subtract(p, g, out=pn)
        else:
            ops.multiply(v, self.momentum, out=v)
            ops.add(v, g, out=v)
            ops.subtract(p, v, out=pn)
        return (ms, v)


@pytest.fixture
def rmsprop():
    """RMSprop registered for one test, and gone after it."""
    optimizers.register(RMSprop)
    yield RMSprop
    optimizers.unregister("rmsprop")


def serving(backend):
    """The engines that train a network on ``backend``: the reference, and each that ``auto`` picks there."""
    return ["reference", *(name for name, entry in engines.REGISTRY.items() if backend in entry.auto)]


def data(rng, n=24):
    X = rng.normal(size=(n, 5))
    return X, rng.integers(0, 3, n)


NET = {"activation": "tanh", "output_activation": "softmax", "dtype": "float64"}


def network(seed=3, **options):
    return anynet.Network([5, 8, 3], seed=seed, **(NET | options))


def host(net):
    return [anynet.to_numpy(a) for a in net.weights + net.biases]


def assert_close(a, b, dtype):
    for x, y in zip(host(a), host(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=tol(dtype), atol=tol(dtype))


# --------------------------------------------------------------------------- a registered optimizer


CASES = {
    "plain": {"rho": 0.8},
    "momentum-batches": {"momentum": 0.9, "batch_size": 7, "shuffle": False},
}


@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_a_registered_optimizer_trains_on_every_engine_that_serves_the_backend(rmsprop, backend, rng, options):
    X, labels = data(rng)
    opt = optimizers.get("rmsprop", **{k: v for k, v in options.items() if k in ("rho", "momentum")})
    acts = (activations.get("tanh"), activations.get("softmax"))
    auto = engines.select("auto", backend, acts=acts, loss=losses.get("cross_entropy"), opt=opt)
    assert auto.name == serving(backend)[-1]  # its flat forms take it onto the backend's fast engine
    nets = {}
    for engine in serving(backend):
        net = network()
        history = net.fit(X, labels, epochs=6, lr=0.01, optimizer="rmsprop", verbose=0, engine=engine, **options)
        assert history.loss[-1] < 0.9 * history.loss[0], f"{engine} did not train"
        assert net.optimizer == opt
        nets[engine] = net
    ref = nets["reference"]
    for engine, net in nets.items():
        np.testing.assert_allclose(net.history.loss, ref.history.loss, rtol=tol(net.dtype), err_msg=engine)
        assert_close(net, ref, net.dtype)


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_a_registered_optimizer_saves_loads_and_resumes(rmsprop, rng, tmp_path, engine):
    X, labels = data(rng)
    options = {"optimizer": "rmsprop", "rho": 0.8, "momentum": 0.5, "lr": 0.01, "verbose": 0, "engine": engine}
    whole, half = network(), network()
    h4 = whole.fit(X, labels, epochs=4, **options)
    h2 = half.fit(X, labels, epochs=2, **options)
    path = anynet.save(half, tmp_path / "rmsprop.npz")
    with np.load(path, allow_pickle=False) as saved:
        entry = json.loads(str(saved["anynet_config"]))["optimizer"]
    assert (entry["name"], entry["options"]) == ("rmsprop", {"rho": 0.8, "epsilon": 1e-8, "momentum": 0.5})
    back = anynet.load(path)
    assert back.optimizer == RMSprop(rho=0.8, momentum=0.5)
    h_rest = back.fit(X, labels, epochs=2, **options)
    np.testing.assert_allclose(h2.loss + h_rest.loss, h4.loss, rtol=tol(back.dtype))
    assert_close(back, whole, back.dtype)
    # the mean squares and velocities came back: a fresh optimizer goes elsewhere
    fresh = anynet.load(path)
    fresh.set_optimizer(None, None)
    fresh.fit(X, labels, epochs=2, **options)
    assert not np.allclose(host(fresh)[0], host(whole)[0], rtol=1e-6, atol=0)


def test_a_checkpoint_of_an_unregistered_optimizer_says_to_register_it(rmsprop, rng, tmp_path):
    net = network()
    net.fit(*data(rng), epochs=1, lr=0.01, optimizer="rmsprop", verbose=0)
    path = anynet.save(net, tmp_path / "rmsprop.npz")
    optimizers.unregister("rmsprop")
    try:
        with pytest.raises(anynet.CheckpointError, match=r"optimizer 'rmsprop' is not one of \['adam', 'sgd'\]; .*"):
            anynet.load(path)
    finally:
        optimizers.register(RMSprop)
    assert anynet.load(path).optimizer == RMSprop()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: [s[0], None], r"the rmsprop state has no velocity"),
        (lambda s: [s[0][:1], s[1]], r"the rmsprop state's mean square is not one entry per layer \(2\)"),
        (lambda s: [s[0]], r"the rmsprop state is not \[mean squares, velocities\]"),
        (lambda s: [s[0], s[1], 0], r"the rmsprop state is not \[mean squares, velocities\]"),
    ],
)
def test_a_loaded_state_is_held_against_the_optimizers_layout(rmsprop, rng, tmp_path, damage, message):
    net = network()
    net.fit(*data(rng), epochs=1, lr=0.01, optimizer="rmsprop", momentum=0.5, verbose=0)
    path = anynet.save(net, tmp_path / "rmsprop.npz")
    with np.load(path, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    config = json.loads(str(arrays["anynet_config"]))
    config["optimizer"]["state"] = damage(config["optimizer"]["state"])
    arrays["anynet_config"] = np.asarray(json.dumps(config))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(anynet.CheckpointError, match=message):
        anynet.load(path)


def test_an_ensemble_steps_each_member_with_its_own_momentum(rmsprop, rng):
    X, labels = data(rng)
    options = {"optimizer": "rmsprop", "lr": 0.01, "epochs": 4, "verbose": 0}
    ens = anynet.Ensemble([5, 8, 3], seeds=[3, 4], **NET)
    ens.fit(X, labels, momentum=[0.0, 0.9], **options)
    for i, momentum in enumerate([0.0, 0.9]):
        alone = network(seed=[3, 4][i])
        alone.fit(X, labels, momentum=momentum, **options)
        assert_close(ens.members[i], alone, alone.dtype)


def test_every_layout_describes_the_state_its_optimizer_keeps(rmsprop, xp, asarray, rng):
    layers = [(asarray(rng.normal(size=(5, 4))), asarray(rng.normal(size=4))), (asarray(rng.normal(size=(4, 2))), None)]
    shapes = [((5, 4), (4,)), ((4, 2), None)]
    grads = tree_map(lambda a: a * 0.5, layers)
    seen = []

    def leaf(node, shape, kinds, what):
        assert tuple(node.shape) == shape, what
        seen.append(what)

    opts = [cls() for cls in optimizers.OPTIMIZERS.values()]
    opts += [optimizers.SGD(momentum=0.9), RMSprop(momentum=0.9)]
    for opt in opts:
        state = opt.init(layers, xp=xp)
        _, after = opt.step(layers, grads, state, 0.1, xp=xp)
        for s in (state, after):
            optimizers.check_state(opt.state_layout(shapes), s, shapes, leaf, name=opt.name)
    assert {"first moment for W0", "velocity for b0", "mean square for W1"} <= set(seen)
    assert "mean square for b1" not in seen  # the second layer has no bias
    # a layout's other parts: an array of its own shape, a count, a part that may be None
    layout = (optimizers.Count(), optimizers.Array("scale", (3,)), optimizers.Maybe(LikeParams("trace")))
    optimizers.check_state(layout, (2, xp.ones(3), None), shapes, leaf, name="other")
    assert seen[-1] == "scale"
    with pytest.raises(AssertionError, match="scale"):
        optimizers.check_state(layout, (2, xp.ones(4), None), shapes, leaf, name="other")
    with pytest.raises(ValueError, match=r"the other state is not \[step count, scale, traces or nothing\]"):
        optimizers.check_state(layout, (2, xp.ones(3)), shapes, leaf, name="other")
    with pytest.raises(ValueError, match=r"the other step count -1 is not a whole number >= 0"):
        optimizers.check_state(layout, (-1, xp.ones(3), None), shapes, leaf, name="other")
    adam_layout = optimizers.Adam().state_layout(shapes)
    with pytest.raises(ValueError, match=r"the adam state is not \[step count, first moments, second moments\]"):
        optimizers.check_state(adam_layout, optimizers.SGD(momentum=0.9).init(layers, xp=xp), shapes, leaf, name="adam")


def test_a_zero_momentum_member_of_a_momentum_ensemble_still_loads(rng, tmp_path):
    """Such a member holds the stack's velocity under SGD(momentum=0), and its checkpoints have
    always held it: they load, and train on as plain descent."""
    X, labels = data(rng)
    ens = anynet.Ensemble([5, 8, 3], seeds=[3, 4], **NET)
    ens.fit(X, labels, optimizer="sgd", lr=0.1, momentum=[0.0, 0.9], epochs=2, verbose=0)
    member = ens.members[0]
    assert member.optimizer == optimizers.SGD()
    assert member.optimizer_state is not None
    back = anynet.load(anynet.save(member, tmp_path / "member.npz"))
    assert back.optimizer == optimizers.SGD()
    assert back.optimizer_state is not None
    # the reference engine: the compiled one (JAX) cannot yet take a state its optimizer's init would
    # not make (it rebuilds the state in init's structure), for the member itself as for its checkpoint
    h_member = member.fit(X, labels, lr=0.1, epochs=2, verbose=0, engine="reference")
    assert back.fit(X, labels, lr=0.1, epochs=2, verbose=0, engine="reference").loss == h_member.loss


# --------------------------------------------------------------------------- the registry


def test_register_adds_a_name_and_unregister_takes_it_away():
    assert "rmsprop" not in optimizers.names()
    assert optimizers.register(RMSprop) is RMSprop
    try:
        assert optimizers.names() == ["adam", "rmsprop", "sgd"]
        assert optimizers.register(RMSprop) is RMSprop  # again: nothing changes
        assert optimizers.get("rmsprop", rho=0.5, momentum=0.9) == RMSprop(rho=0.5, momentum=0.9)
        assert optimizers.options_of("rmsprop") == {"rho": 0.9, "epsilon": 1e-8, "momentum": 0.0}
    finally:
        assert optimizers.unregister("rmsprop") is RMSprop
    assert optimizers.names() == ["adam", "sgd"]
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; expected one of \['adam', 'sgd'\]"):
        optimizers.get("rmsprop")
    with pytest.raises(ValueError, match=r"no optimizer 'rmsprop' is registered; the registered ones are \['adam'"):
        optimizers.unregister("rmsprop")


@dataclasses.dataclass(frozen=True)
class NoLayout:
    name = "nolayout"

    def init(self, layers, *, xp):
        return None

    def step(self, layers, grads, state, lr, *, xp):
        return layers, state


@dataclasses.dataclass(frozen=True)
class OtherAdam(NoLayout):
    name = "adam"

    def state_layout(self, shapes):
        return None


class NotADataclass:
    name = "plain"


@pytest.mark.parametrize(
    ("cls", "error", "message"),
    [
        (NotADataclass, TypeError, r"register expects a dataclass whose init fields are the optimizer's options"),
        (NoLayout, TypeError, r"NoLayout cannot be registered: it has no state_layout"),
        (OtherAdam, ValueError, r"the optimizer name 'adam' is taken by Adam; give OtherAdam another name"),
        (
            dataclasses.make_dataclass("Nameless", [], frozen=True),
            TypeError,
            r"register needs Nameless.name, the name fit and checkpoints call it by \(a string\), got None",
        ),
    ],
    ids=["not-a-dataclass", "no-layout", "name-taken", "nameless"],
)
def test_register_refuses_what_it_could_not_build_or_save(cls, error, message):
    with pytest.raises(error, match=message):
        optimizers.register(cls)
    assert optimizers.OPTIMIZERS["adam"] is optimizers.Adam
    assert optimizers.names() == ["adam", "sgd"]


def test_get_builds_from_options_and_passes_an_object_through():
    assert optimizers.get("adam", beta_1=0.5) == optimizers.Adam(beta_1=0.5)
    assert optimizers.get("sgd", momentum=0.9, nesterov=True) == optimizers.SGD(momentum=0.9, nesterov=True)
    opt = optimizers.Adam(beta_2=0.99)
    assert optimizers.get(opt) is opt
    with pytest.raises(TypeError, match=r"options \['beta_1'\] were given with the optimizer object .* used as it is"):
        optimizers.get(opt, beta_1=0.5)
    with pytest.raises(
        TypeError,
        match=r"optimizer 'adam' takes no option 'beta1' \(did you mean 'beta_1'\?\); "
        r"its options are \['beta_1', 'beta_2', 'epsilon'\]",
    ):
        optimizers.get("adam", beta1=0.5)
    with pytest.raises(TypeError, match=r"optimizer 'sgd' takes no option 'beta_1'; its options are \['momentum', "):
        optimizers.get("sgd", beta_1=0.5)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adma' \(did you mean 'adam'\?\); expected one of"):
        optimizers.get("adma")


REFUSED = [
    (optimizers.Adam, {"beta_1": 1}, r"Adam's beta_1 must be a number in \[0, 1\), got 1$"),
    (optimizers.Adam, {"beta_1": -0.1}, r"Adam's beta_1 must be a number in \[0, 1\), got -0.1"),
    (optimizers.Adam, {"beta_2": 1.0}, r"Adam's beta_2 must be a number in \[0, 1\), got 1.0"),
    (optimizers.Adam, {"epsilon": 0}, r"Adam's epsilon must be a positive finite number, got 0"),
    (optimizers.Adam, {"epsilon": -1e-8}, r"Adam's epsilon must be a positive finite number, got -1e-08"),
    (optimizers.Adam, {"epsilon": float("inf")}, r"Adam's epsilon must be a positive finite number, got inf"),
    (optimizers.Adam, {"beta_1": "0.9"}, r"Adam's beta_1 must be a number in \[0, 1\), got '0.9'"),
    (optimizers.SGD, {"momentum": -1}, r"SGD's momentum must be a non-negative finite number, got -1"),
    (optimizers.SGD, {"momentum": float("nan")}, r"SGD's momentum must be a non-negative finite number, got nan"),
    (optimizers.SGD, {"momentum": True}, r"SGD's momentum must be a non-negative finite number, got True"),
    (optimizers.SGD, {"nesterov": "yes"}, r"SGD's nesterov must be True or False, got 'yes'"),
]


@pytest.mark.parametrize(("cls", "options", "message"), REFUSED, ids=[str(o) for _, o, _ in REFUSED])
def test_an_optimizer_refuses_a_setting_out_of_its_range(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls(**options)
    with pytest.raises(ValueError, match=message):
        optimizers.get(cls.name, **options)


def test_settings_are_kept_as_python_numbers_and_a_stacks_arrays_pass():
    sgd = optimizers.SGD(momentum=np.float32(0.5), nesterov=np.bool_(True))
    assert (type(sgd.momentum), type(sgd.nesterov)) == (float, bool)
    assert optimizers.to_config(sgd) == ("sgd", {"momentum": 0.5, "nesterov": True})
    per_member = np.array([0.0, 0.9]).reshape(-1, 1, 1)  # one momentum per member of a stack
    assert optimizers.SGD(momentum=per_member).momentum is per_member
    assert optimizers.to_config(RMSprop()) is None  # not registered: a checkpoint keeps no state of it


# --------------------------------------------------------------------------- fit's options


def test_fit_passes_the_options_the_chosen_optimizer_takes(rmsprop, rng):
    X, labels = data(rng)
    net = network()
    net.fit(X, labels, epochs=1, optimizer="adam", beta_1=0.5, epsilon=1e-7, verbose=0)
    assert net.optimizer == optimizers.Adam(beta_1=0.5, epsilon=1e-7)
    net.fit(X, labels, epochs=1, optimizer="rmsprop", rho=0.5, momentum=0.9, verbose=0)
    assert net.optimizer == RMSprop(rho=0.5, momentum=0.9)
    net.fit(X, labels, epochs=1, momentum=0.9, nesterov=True, verbose=0)
    assert net.optimizer == optimizers.SGD(momentum=0.9, nesterov=True)
    # momentum=0 and nesterov=False ask for nothing: an optimizer without them trains as asked
    a, b = network(), network()
    a.fit(X, labels, epochs=2, optimizer="adam", momentum=0.0, nesterov=False, verbose=0)
    b.fit(X, labels, epochs=2, optimizer="adam", verbose=0)
    assert a.optimizer == b.optimizer == optimizers.Adam()
    assert a.history.loss == b.history.loss


BAD_FIT = [
    (
        {"optimizer": "adam", "momentum": 0.9},
        TypeError,
        r"fit got momentum=0.9, but the optimizer 'adam' does not take 'momentum'; "
        r"it takes \['beta_1', 'beta_2', 'epsilon'\]",
    ),
    (
        {"optimizer": "rmsprop", "nesterov": True},
        TypeError,
        r"fit got nesterov=True, but the optimizer 'rmsprop' does not take 'nesterov'; "
        r"it takes \['rho', 'epsilon', 'momentum'\]",
    ),
    (
        {"optimizer": "adam", "beta1": 0.5},
        TypeError,
        r"fit got an unknown option 'beta1' \(did you mean 'beta_1'\?\); the optimizer 'adam' takes "
        r"\['beta_1', 'beta_2', 'epsilon'\], and fit itself takes \['epochs', 'lr', .*'on_divergence'\]",
    ),
    (
        {"batchsize": 2},
        TypeError,
        r"fit got an unknown option 'batchsize' \(did you mean 'batch_size'\?\); the optimizer 'sgd' takes "
        r"\['momentum', 'nesterov'\], and fit itself takes \[",
    ),
    (
        {"optimizer": optimizers.Adam(), "beta_1": 0.5},
        TypeError,
        r"fit got an unknown option 'beta_1'; an optimizer object takes none here \(set them on the object\)",
    ),
    ({"optimizer": "adam", "beta_1": 1.0}, ValueError, r"Adam's beta_1 must be a number in \[0, 1\), got 1.0"),
    ({"optimizer": "rmsprop", "rho": 1.5}, ValueError, r"RMSprop's rho must be a number in \[0, 1\), got 1.5"),
    ({"momentum": -0.5}, ValueError, r"SGD's momentum must be a non-negative finite number, got -0.5"),
]


@pytest.mark.parametrize(("options", "error", "match"), BAD_FIT, ids=[str(o) for o, _, _ in BAD_FIT])
def test_fit_refuses_an_option_its_optimizer_does_not_take_before_training(rmsprop, rng, options, error, match):
    X, labels = data(rng)
    net = network()
    before = host(net)
    with pytest.raises(error, match=match):
        net.fit(X, labels, epochs=1, verbose=0, **options)
    for a, b in zip(before, host(net), strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.epochs_trained == 0


def test_the_command_line_offers_every_registered_optimizer(rmsprop):
    from anynet import cli

    args = cli.build_parser().parse_args(["train", "xor", "--optimizer", "rmsprop"])
    assert args.optimizer == "rmsprop"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "xor", "--optimizer", "nope"])
