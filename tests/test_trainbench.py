"""`bench train` without the official code: run order, the mapping of our preset onto its parameters, its errors, and
a whole bench against a stand-in "official" module that counts what it is handed."""

import json
import textwrap

import pytest
from click.testing import CliRunner

from sessionrec.model import trainbench
from sessionrec.model.config import PRESETS
from sessionrec.model.errors import DataError

# 5 sessions (one a single click), 6 targets; the stand-in yields one batch per target.
CLICKS = "event_time,product_id,user_session\n" + "\n".join(
    f"{t},{item},{session}" for t, (session, item) in enumerate(
        [("a", 1), ("a", 2), ("a", 3), ("b", 2), ("b", 4), ("c", 1), ("c", 1), ("c", 5), ("d", 3), ("d", 2), ("e", 9)]))

FAKE = textwrap.dedent('''
    import json, pathlib, time

    class SessionDataIterator:
        def __init__(self, data, batch_size, **kwargs):
            self.targets = int((data.groupby("SessionId").size() - 1).sum())

        def __call__(self, enable_neg_samples, reset_hook=None):
            for _ in range(self.targets):
                time.sleep(0.001)
                yield [0], [0]

    class GRU4Rec:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def fit(self, data, compatibility_mode=True):
            given = {k: v for k, v in self.kwargs.items() if k != "device"}
            pathlib.Path(__file__).with_name("given.json").write_text(json.dumps({**given, "device": str(self.kwargs["device"])}))
            for _ in range(self.kwargs["n_epochs"]):
                for _ in SessionDataIterator(data, self.kwargs["batch_size"])(True):
                    pass
''')


@pytest.fixture
def setup(tmp_path):
    clicks = tmp_path / "train_data.csv"
    clicks.write_text(CLICKS)
    official = tmp_path / "official"
    official.mkdir()
    (official / trainbench.OFFICIAL_FILE).write_text(FAKE)
    return clicks, official


def test_runs_alternate_abba():
    assert trainbench.abba(1) == ["ours", "official"]
    assert trainbench.abba(3) == ["ours", "official", "official", "ours", "ours", "official"]


def test_the_official_preset_maps_onto_the_official_parameters():
    params = trainbench.official_parameters(PRESETS["official"])
    assert params == dict(layers=[100], loss="cross-entropy", batch_size=32, dropout_p_embed=0.0, dropout_p_hidden=0.0,
                          learning_rate=0.05, momentum=0.0, sample_alpha=0.5, n_sample=2048, embedding=0,
                          constrained_embedding=True, bpreg=1.0, elu_param=0.5, logq=0.0)
    separate = trainbench.official_parameters(PRESETS["official"].updated(embedding=64))
    assert separate["embedding"] == 64 and separate["constrained_embedding"] is False
    with pytest.raises(DataError, match="cannot train this configuration"):
        trainbench.official_parameters(PRESETS["lab"])


def test_no_usable_official_code_is_one_clear_error(tmp_path, setup):
    clicks, _ = setup
    with pytest.raises(DataError, match="no gru4rec_pytorch.py"):
        trainbench.load_official(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / trainbench.OFFICIAL_FILE).write_text("import no_such_module_here\n")
    with pytest.raises(DataError, match="cannot import the official GRU4Rec"):
        trainbench.load_official(broken)
    (broken / trainbench.OFFICIAL_FILE).write_text("x = 1\n")
    with pytest.raises(DataError, match="not the official GRU4Rec"):
        trainbench.load_official(broken)
    from sessionrec.stream.cli.main import main

    result = CliRunner().invoke(main, ["bench", "train", str(clicks), "--official", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "no gru4rec_pytorch.py" in result.output


def test_a_whole_bench_against_a_stand_in_official(setup, monkeypatch):
    clicks, official = setup
    monkeypatch.setattr(trainbench, "_in_fresh_process", lambda function, *args: function(*args))
    seen = []
    record = trainbench.run_train_bench(clicks, official, runs=2, epochs=2, on_run=seen.append)
    assert [run["implementation"] for run in record["runs"]] == ["ours", "official", "official", "ours"] == [r.implementation for r in seen]
    assert all(run["events"] == 2 * 6 for run in record["runs"])  # both counted every target of both epochs
    given = json.loads((official / "given.json").read_text())
    assert given == {**trainbench.official_parameters(PRESETS["official"]), "n_epochs": 2, "device": "cpu"}
    ours = sorted(r.events_per_s for r in seen if r.implementation == "ours")
    theirs = sorted(r.events_per_s for r in seen if r.implementation == "official")
    assert record["train_events_per_s"] == pytest.approx(sum(ours) / 2)  # the median of two
    assert record["ratio"] == pytest.approx(sum(ours) / sum(theirs))
