"""The serving engine on each device computes what the CPU computes."""

import numpy as np
import pytest
import torch

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS, NetworkConfig
from sessionrec.model.neighbours import NeighbourRules, NeighbourTable, learn_sessions
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.worker.inference import Engine, history_matrix


def engine_pair(device: str) -> tuple[Engine, Engine]:
    torch.manual_seed(0)
    config = PRESETS["best"].updated(layers=[16])
    table = NeighbourTable(NeighbourRules(width=config.serving.neighbours))
    rng = np.random.default_rng(5)
    learn_sessions(table, rng.integers(0, 320, 2000), np.arange(0, 2001, 4))  # 500 random sessions of 4 clicks, new items included
    ckpt = checkpoint.Checkpoint(net=GRU4Rec(NetworkConfig(layers=[16]), 300), config=config, vocab=Vocabulary(str(i) for i in range(320)),
                                 neighbours=table)
    blob, meta = checkpoint.to_bytes(ckpt)
    return Engine(blob, meta, torch.device("cpu"), 20), Engine(blob, meta, torch.device(device), 20)


def inputs(rng: np.random.Generator, batch: int = 64, length: int = 10):
    hidden = rng.normal(0, 0.5, (batch, 16)).astype(np.float32)
    items = rng.integers(0, 320, batch)  # some beyond the 300 the network knows
    history = history_matrix([rng.integers(0, 320, rng.integers(1, length)).astype(np.int32) for _ in range(batch)], length)
    history[:, -1] = items
    return hidden, items, history


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_engine_matches_cpu():
    cpu, cuda = engine_pair("cuda")
    hidden, items, history = inputs(np.random.default_rng(0))
    cpu_state, cpu_recs = cpu.step(hidden, items, history)
    cuda_state, cuda_recs = cuda.step(hidden, items, history)
    assert np.abs(cpu_state - cuda_state).max() < 1e-4
    assert np.mean([(a == b).all() for a, b in zip(cpu_recs, cuda_recs)]) > 0.95  # near-ties may swap
    assert np.abs(cpu.rebuild(history) - cuda.rebuild(history)).max() < 1e-4


def test_engine_steps_like_the_offline_scorer():
    cpu, _ = engine_pair("cpu")
    hidden, items, history = inputs(np.random.default_rng(1))
    state, recs = cpu.step(hidden, items, history)
    expected_state = cpu.scorer.advance(torch.from_numpy(hidden), torch.from_numpy(items))
    full = cpu.scorer.scores(expected_state, torch.from_numpy(history).long(), 320)
    assert np.allclose(state, expected_state.numpy(), atol=1e-6)
    assert torch.allclose(full.gather(1, torch.from_numpy(recs)), full.topk(20, dim=1).values, atol=1e-6)
