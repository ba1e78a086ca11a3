"""Checkpoints round-trip through safetensors + JSON, and the CLI speaks in one-line errors."""

import json

import numpy as np
import torch
from click.testing import CliRunner

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS, NetworkConfig
from sessionrec.model.neighbours import learned_from
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from sessionrec.stream.cli.main import main


def test_round_trip_keeps_weights_vocab_and_version(tmp_path):
    net = GRU4Rec(NetworkConfig(layers=[4, 5], embedding=2), 3)
    ckpt = checkpoint.Checkpoint(net=net, config=PRESETS["official"].updated(layers=[4, 5], embedding=2), vocab=Vocabulary(["x", "y", "z", "new"]))
    checkpoint.save(ckpt, tmp_path)
    assert ckpt.version.startswith("v")
    back = checkpoint.load(tmp_path)
    assert back.version == ckpt.version and back.vocab.items == ["x", "y", "z", "new"]
    for (name, a), b in zip(net.state_dict().items(), back.net.state_dict().values()):
        assert torch.equal(a, b), name
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["n_items"] == 3 and meta["vocab_size"] == 4
    assert not any(p.suffix in (".pt", ".pkl", ".bin") for p in tmp_path.iterdir())


def test_a_loaded_checkpoint_with_neighbours_keeps_its_version(tmp_path):
    """The registry names a model by the hash of its bytes: the file's version and the loaded one's must agree."""
    config = PRESETS["best"].updated(layers=[4], embedding=2)
    neighbours = learned_from(np.array([0, 1, 2, 1, 0, 2]), np.array([0, 3, 6]), width=config.serving.neighbours)
    ckpt = checkpoint.Checkpoint(net=GRU4Rec(config.network, 5), config=config, vocab=Vocabulary(list("abcde")), neighbours=neighbours)
    checkpoint.save(ckpt, tmp_path)
    back = checkpoint.load(tmp_path)
    saved = back.version
    assert saved == ckpt.version and checkpoint.to_bytes(back)[0] == checkpoint.to_bytes(ckpt)[0] and back.version == saved


def test_unknown_items_read_as_the_zero_row_and_are_never_scored():
    net = GRU4Rec(NetworkConfig(layers=[4]), 3)
    out, _ = net.step(torch.tensor([7]), net.init_hidden(1))
    same, _ = net.step(torch.tensor([3]), net.init_hidden(1))
    assert torch.equal(out, same)
    assert net.score(out).shape == (1, 3)


def test_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a checkpoint" in result.output
    result = CliRunner().invoke(main, ["train", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "no such file" in result.output and "Traceback" not in result.output


def test_training_forward_equals_step_then_score():
    for embedding in (0, 3):
        torch.manual_seed(0)
        net = GRU4Rec(NetworkConfig(layers=[4], embedding=embedding), 6)
        items, hidden, columns = torch.tensor([1, 7, 2]), torch.randn(3, 4), torch.tensor([5, 1, 0, 5])
        scores, new_hidden = net(items, hidden, columns)
        output, expected_hidden = net.step(items, hidden)
        assert torch.allclose(scores, net.score(output, columns)) and torch.allclose(new_hidden, expected_hidden)
