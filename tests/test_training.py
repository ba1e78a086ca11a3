"""Training: every loss and optimizer learns on real clicks; the optimizer matches its formula."""

import numpy as np
import pytest
import torch

from sessionrec.model.config import PRESETS
from sessionrec.model.data import data_dir, load_sessions
from sessionrec.model.losses import LOSSES
from sessionrec.model.optim import AdagradM
from sessionrec.model.sessions import Sessions
from sessionrec.model.train import train
from sessionrec.model.vocab import Vocabulary


@pytest.fixture(scope="module")
def clicks():
    frame = load_sessions(data_dir() / "ecommerce" / "train_data.csv")
    frame = frame[frame.session_id.isin(frame.session_id.unique()[:1500])].reset_index(drop=True)
    vocab = Vocabulary(frame.item_id)
    return Sessions.from_frame(frame, vocab), len(vocab)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_each_loss_trains_to_a_finite_decreasing_loss(clicks, loss):
    sessions, n_items = clicks
    config = PRESETS["official"].updated(loss=loss, layers=[32], n_sample=128, epochs=3, lr=0.05)
    _, log = train(config, sessions, n_items, progress=False)
    assert all(np.isfinite(log.epoch_loss))
    assert log.epoch_loss[-1] < log.epoch_loss[0]


@pytest.mark.parametrize("preset", ["lab", "official"])
def test_training_is_reproducible(clicks, preset):
    sessions, n_items = clicks
    config = PRESETS[preset].updated(layers=[16], embedding=8 if preset == "lab" else 0, epochs=1)
    a, _ = train(config, sessions, n_items, progress=False)
    b, _ = train(config, sessions, n_items, progress=False)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_adagradm_sparse_rows_update_like_the_dense_formula(momentum):
    torch.manual_seed(0)
    dense = torch.nn.Parameter(torch.randn(5, 3))
    sparse = torch.nn.Parameter(dense.detach().clone())
    opt_dense, opt_sparse = AdagradM([dense], lr=0.1, momentum=momentum), AdagradM([sparse], lr=0.1, momentum=momentum)
    acc, velocity, expected = torch.zeros(5, 3), torch.zeros(5, 3), dense.detach().clone()
    for rows in ([0, 2, 2], [1, 2]):
        idx = torch.tensor(rows)
        torch.nn.functional.embedding(idx, dense).sum().backward()
        torch.nn.functional.embedding(idx, sparse, sparse=True).sum().backward()
        grad = dense.grad.clone()
        touched = grad.abs().sum(1) > 0
        acc += grad**2
        step = grad / torch.sqrt(acc + 1e-6)
        velocity[touched] = momentum * velocity[touched] - 0.1 * step[touched]
        expected[touched] += velocity[touched]
        opt_dense.step()
        opt_sparse.step()
        dense.grad = sparse.grad = None
    assert torch.allclose(sparse, expected, atol=1e-6)
    if momentum == 0.0:
        assert torch.allclose(dense, expected, atol=1e-6)


def test_growing_keeps_old_items_and_fine_tuning_learns_new_ones(clicks):
    from sessionrec.model.evaluate import served_report
    from sessionrec.model.finetune import fine_tune

    sessions, n_items = clicks
    config = PRESETS["official"].updated(layers=[16], n_sample=32, epochs=1)
    net, _ = train(config, sessions, n_items, progress=False)
    bigger = net.grow(n_items + 3)
    assert torch.equal(bigger.item_out.weight[:n_items], net.item_out.weight[:n_items])
    assert torch.equal(bigger.item_out.weight[n_items:], torch.zeros(4, 16))  # new items read as the unknown item
    hidden = net.init_hidden(2)
    items = torch.tensor([0, n_items + 1])  # a known and a new item: the grown model reads both as the original does
    old_scores = net.score(net.step(items, hidden)[0])
    new_scores = bigger.score(bigger.step(items, hidden)[0])
    assert torch.allclose(old_scores, new_scores[:, :n_items], atol=1e-6)
    assert torch.allclose(new_scores[:, n_items:], net.item_bias.weight[:n_items].min().expand(2, 3))  # low, not random
    # sessions over three items the model has never seen: n_items, n_items + 1, n_items + 2, repeated
    new = Sessions(np.array([n_items, n_items + 1, n_items + 2] * 40, dtype=np.int64), np.arange(0, 121, 3), np.tile([True, False, False], 40), np.arange(40))
    before = served_report(net.grow(n_items + 3), config.serving, new, n_items + 3)
    tuned, _ = fine_tune(net, config.updated(lr=0.2), new, n_items + 3, epochs=5)
    after = served_report(tuned, config.serving, new, n_items + 3)
    assert before.overall.recall_at_20 == 0.0 and after.overall.recall_at_20 == 1.0
    assert net.n_items == n_items  # the original is untouched


def test_popularity_sampler_follows_popularity_to_the_alpha():
    from sessionrec.model.sampling import PopularitySampler

    counts = np.array([1, 4, 16, 0, 9])
    sampler = PopularitySampler(counts, alpha=0.5, n_sample=1000, generator=torch.Generator().manual_seed(0), block=200_000)
    drawn = torch.cat([sampler.draw() for _ in range(200)])
    freq = np.bincount(drawn.numpy(), minlength=5) / len(drawn)
    expected = np.sqrt(counts) / np.sqrt(counts).sum()  # 1, 2, 4, 0, 3 out of 10
    assert np.allclose(freq, expected, atol=0.005) and freq[3] == 0


def test_deduplicated_cross_entropy_equals_the_loss_over_every_sampled_column():
    from sessionrec.model.losses import cross_entropy
    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.train import Objective

    config = PRESETS["official"].updated(layers=[8], n_sample=6)
    net = GRU4Rec(config.network, 10)
    objective = Objective(config, np.ones(10, dtype=np.int64), torch.Generator().manual_seed(0))
    objective.sampler.draw = lambda: torch.tensor([3, 3, 7, 1, 3, 9])  # duplicates, and row 0's own item
    inputs, targets, hidden = torch.tensor([2, 5, 1]), torch.tensor([1, 4, 4]), torch.randn(3, 8)
    fast, _ = objective(net, inputs, hidden, targets)
    columns = torch.cat([targets, torch.tensor([3, 3, 7, 1, 3, 9])])
    scores, _ = net(inputs, hidden, columns)
    slow = cross_entropy(scores, torch.arange(3), columns[None, :] != targets[:, None])
    assert torch.allclose(fast, slow, atol=1e-6)


@pytest.mark.parametrize(("change", "message"), [
    ({"loss": "hinge"}, "loss must be one of"),
    ({"layers": [0]}, "layers must be positive"),
    ({"jitter": -1.0}, "jitter must be >= 0"),
    ({"history_weight": 1.5}, "history_weight must lie in [0, 1]"),
])
def test_a_bad_configuration_is_one_clear_error(change, message):
    from sessionrec.model.data import DataError

    with pytest.raises(DataError, match="invalid configuration") as error:
        PRESETS["official"].updated(**change)
    assert message in str(error.value)



def reference_step(net, state, config, inputs, targets, sample, hidden):
    """One step the straightforward way: dense gradients over every item and every sampled column, then
    the official update: acc += g^2; v = mu * v - lr * g / sqrt(acc + eps); p += v, where the output table
    changes in the rows the step touches only (inputs and columns, never the padding row)."""
    from sessionrec.model.losses import bpr_max, cross_entropy

    params = dict(net.named_parameters())
    weight, bias = params["item_out.weight"], params["item_bias.weight"]
    columns, inputs = torch.cat([targets, sample]), inputs.clamp(max=net.n_items)  # an unknown item reads the padding row
    output, _ = net._recur(weight[inputs], hidden)
    scores = output @ weight[columns].T + bias[columns].T
    positive, negative = torch.arange(len(targets)), columns[None, :] != targets[:, None]
    if config.loss == "cross-entropy":
        loss = cross_entropy(scores, positive, negative)
    else:
        loss = bpr_max(torch.nn.functional.elu(scores, config.elu), positive, negative, reg=config.bpreg)
    grads = torch.autograd.grad(loss, list(params.values()))
    touched = torch.zeros(net.n_items + 1, dtype=torch.bool)
    touched[torch.cat([inputs, columns])] = True
    touched[net.n_items] = False
    with torch.no_grad():
        for (name, p), g in zip(params.items(), grads):
            acc, velocity = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
            rows = touched if name == "item_out.weight" else slice(None)
            acc[rows] += g[rows] ** 2
            velocity[rows] = config.momentum * velocity[rows] - config.lr * g[rows] / torch.sqrt(acc[rows] + 1e-6)
            p[rows] += velocity[rows]
    return loss.detach()


@pytest.fixture
def float64():
    """Adagrad's first step, g / sqrt(g^2 + eps), turns a float32 rounding of a tiny gradient into a change of
    lr / sqrt(eps) times it (the order of float sums differs between CPUs' kernels): the steps are compared in float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize(("loss", "momentum"), [("cross-entropy", 0.0), ("cross-entropy", 0.9), ("bpr-max", 0.5)])
@pytest.mark.usefixtures("float64")
def test_a_training_step_updates_the_weights_as_the_straightforward_computation(loss, momentum):
    """The fast step (distinct rows gathered once, row-wise sparse updates) changes no figure of the maths."""
    import copy

    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.train import Objective, make_optimizer

    n_items = 12
    config = PRESETS["official"].updated(layers=[6], n_sample=7, loss=loss, momentum=momentum, lr=0.3)
    torch.manual_seed(0)
    net = GRU4Rec(config.network, n_items)
    net.item_bias.weight.data[:n_items].normal_()  # zero biases would hide a wrong bias gradient
    reference, state = copy.deepcopy(net), {}
    net.sparse_gradients(True)
    objective = Objective(config, np.ones(n_items, dtype=np.int64), torch.Generator().manual_seed(0))
    optimizer = make_optimizer(config, net)
    steps = [  # repeated inputs, an unknown input (n_items + 2), a sampled row's own item, an input that is no column
        (torch.tensor([2, 5, 2, n_items + 2]), torch.tensor([1, 4, 4, 9]), torch.tensor([3, 3, 7, 1, 3, 9, 4])),
        (torch.tensor([1, 4, 0, 11]), torch.tensor([6, 4, 8, 2]), torch.tensor([5, 8, 8, 1, 0, 3, 10])),
    ]
    hidden = torch.randn(4, 6)
    for inputs, targets, sample in steps:
        objective.sampler.draw = lambda sample=sample: sample
        fast, _ = objective(net, inputs, hidden, targets)
        optimizer.zero_grad(set_to_none=True)
        fast.backward()
        optimizer.step()
        slow = reference_step(reference, state, config, inputs, targets, sample, hidden)
        assert torch.allclose(fast, slow, atol=1e-10)
        for (name, got), want in zip(net.state_dict().items(), reference.state_dict().values()):
            assert torch.allclose(got, want, atol=1e-10), name
    assert torch.equal(net.item_out.weight[n_items], torch.zeros(6))  # the unknown item's row is never trained



def test_dense_row_gradients_equal_autograds_own():
    """Without sparse gradients (Adam) the gathered rows hand back the dense gradient, zero on the padding row."""
    from sessionrec.model.config import NetworkConfig
    from sessionrec.model.network import GRU4Rec

    torch.manual_seed(0)
    net = GRU4Rec(NetworkConfig(layers=[4]), 6)
    items, hidden, columns, weights = torch.tensor([1, 9, 2]), torch.randn(3, 4), torch.tensor([5, 1, 0, 5]), torch.randn(3, 4)
    (net(items, hidden, columns)[0] * weights).sum().backward()
    table = net.item_out.weight.detach().clone().requires_grad_()
    output, _ = net._recur(table[items.clamp(max=6)], hidden)
    ((output @ table[columns].T + net.item_bias.weight[columns].T) * weights).sum().backward()
    expected = table.grad.clone()
    expected[6] = 0.0
    assert not net.item_out.weight.grad.is_sparse and torch.allclose(net.item_out.weight.grad, expected, atol=1e-6)


@pytest.mark.parametrize(("layers", "momentum"), [([6], 0.0), ([6], 0.9), ([5, 4], 0.5)])
@pytest.mark.usefixtures("float64")
def test_the_hand_derived_step_updates_the_weights_as_the_straightforward_computation(layers, momentum):
    """The official configuration's step without autograd (model.handgrad) changes no figure of the maths either."""
    import copy

    from sessionrec.model.handgrad import HandGradStep
    from sessionrec.model.network import GRU4Rec
    from sessionrec.model.sampling import PopularitySampler

    n_items = 12
    config = PRESETS["official"].updated(layers=layers, n_sample=7, momentum=momentum, lr=0.3)
    torch.manual_seed(0)
    net = GRU4Rec(config.network, n_items)
    net.item_bias.weight.data[:n_items].normal_()
    reference, state = copy.deepcopy(net), {}
    sampler = PopularitySampler(np.ones(n_items), 0.5, 7, torch.Generator().manual_seed(0))
    step = HandGradStep(net, config, sampler)
    steps = [  # repeated inputs, an unknown input (n_items + 2), a sampled row's own item, an input that is no column; then fewer rows
        (torch.tensor([2, 5, 2, n_items + 2]), torch.tensor([1, 4, 4, 9]), torch.tensor([3, 3, 7, 1, 3, 9, 4])),
        (torch.tensor([1, 4, 0, 11]), torch.tensor([6, 4, 8, 2]), torch.tensor([5, 8, 8, 1, 0, 3, 10])),
        (torch.tensor([7, 3, 9]), torch.tensor([3, 3, 0]), torch.tensor([0, 0, 2, 6, 3, 11, 11])),
    ]
    hidden = torch.randn(4, sum(layers))
    for inputs, targets, sample in steps:
        sampler.draw = lambda sample=sample: sample
        hidden = hidden[: len(inputs)]
        loss, new_hidden = step(inputs, hidden, targets)
        with torch.no_grad():
            expected_hidden = reference._recur(reference.item_out.weight[inputs.clamp(max=n_items)], hidden)[1]
        slow = reference_step(reference, state, config, inputs, targets, sample, hidden)
        assert torch.allclose(loss, slow, atol=1e-10)
        assert torch.allclose(new_hidden, expected_hidden, atol=1e-10)
        for (name, got), want in zip(net.state_dict().items(), reference.state_dict().values()):
            assert torch.allclose(got, want, atol=1e-10), name
        hidden = new_hidden
    assert torch.equal(net.item_out.weight[n_items], torch.zeros(6 if layers == [6] else 4))  # the unknown item's row is never trained


@pytest.mark.parametrize("change", [{"loss": "bpr-max"}, {"embedding": 8}, {"dropout_hidden": 0.1}, {"logq": 1.0}, {"optimizer": "adam"},
                                    {"exclude_seen": True}, {"full_softmax": True}])
def test_other_configurations_train_through_autograd(change):
    from sessionrec.model.handgrad import HandGradStep

    assert HandGradStep.supports(PRESETS["official"])
    assert not HandGradStep.supports(PRESETS["official"].updated(**change))
