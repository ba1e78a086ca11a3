"""Training: every loss and optimizer learns on real clicks; the optimizer matches its formula."""

import numpy as np
import pytest
import torch

from model.config import PRESETS
from model.data import data_dir, load_sessions
from model.losses import LOSSES
from model.optim import AdagradM
from model.sessions import Sessions
from model.train import train
from model.vocab import Vocabulary


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
