"""`sessionrec bench train`: our training speed against the official GRU4Rec PyTorch code's.

Both train the same preset on the same clicks with the same hyperparameters on
one torch thread. The official code is imported from a folder the user gives
(github.com/hidasib/GRU4Rec_PyTorch_Official), never shipped with the project.
Runs alternate ABBA (ours, official, official, ours, ...) so that a drift in the
machine's load hits both alike, and each run is a fresh interpreter: process-wide
settings one of them makes (flushing denormals, say) never help the other.

Events/s counts the targets trained on over the training loop's time: ours from
``train``'s own clock; the official's from its session iterator's first batch to
its last, as its own per-epoch figure (its sample cache is filled before the
loop). Its weights start from torch's initialisation (``compatibility_mode=False``):
its NumPy one fails under NumPy 2, and speed does not depend on it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from types import ModuleType
from typing import Any

from sessionrec.model.config import PRESETS, TrainConfig
from sessionrec.model.data import ITEM, SESSION, TIME, load_sessions
from sessionrec.model.errors import DataError

IMPLEMENTATIONS = ("ours", "official")
OFFICIAL_FILE = "gru4rec_pytorch.py"


@dataclass(frozen=True)
class Run:
    implementation: str
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def abba(runs: int) -> list[str]:
    """``runs`` runs of each implementation, ordered ours, official, official, ours, ours, ..."""
    return [IMPLEMENTATIONS[(i + 1) // 2 % 2] for i in range(2 * runs)]


def official_parameters(config: TrainConfig) -> dict[str, Any]:
    """The official GRU4Rec's constructor arguments for ``config`` (device and epochs aside)."""
    problems = []
    if config.loss not in ("cross-entropy", "bpr-max"):
        problems.append(f"loss {config.loss} (it has cross-entropy and bpr-max)")
    if config.optimizer != "adagrad" or config.full_softmax or config.exclude_seen or config.jitter or config.vocab != "train":
        problems.append("anything but sampled training with Adagrad on the training items")
    if problems:
        raise DataError("the official implementation cannot train this configuration: " + "; ".join(problems))
    net = config.network
    return dict(layers=list(net.layers), loss=config.loss, batch_size=config.batch_size, dropout_p_embed=net.dropout_embed,
                dropout_p_hidden=net.dropout_hidden, learning_rate=config.lr, momentum=config.momentum,
                sample_alpha=config.sample_alpha, n_sample=config.n_sample, embedding=net.embedding,
                constrained_embedding=net.embedding == 0, bpreg=config.bpreg, elu_param=config.elu, logq=config.logq)


def load_official(folder: str | Path) -> ModuleType:
    """The official implementation's module from ``folder``, or one clear error."""
    path = Path(folder) / OFFICIAL_FILE
    advice = "get it with: git clone https://github.com/hidasib/GRU4Rec_PyTorch_Official"
    if not path.is_file():
        raise DataError(f"{folder}: no {OFFICIAL_FILE} of the official GRU4Rec there; {advice}")
    spec = importlib.util.spec_from_file_location("gru4rec_pytorch_official", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - whatever the foreign file raises, the answer is one line
        raise DataError(f"{path}: cannot import the official GRU4Rec ({type(exc).__name__}: {exc})") from None
    if not all(hasattr(module, name) for name in ("GRU4Rec", "SessionDataIterator")):
        raise DataError(f"{path}: not the official GRU4Rec (no GRU4Rec and SessionDataIterator in it); {advice}")
    return module


def measure(implementation: str, clicks: Path, config: TrainConfig, official: Path | None) -> Run:
    """One training run on one torch thread: what a fresh process does for each run of the bench."""
    import torch

    torch.set_num_threads(1)
    frame = load_sessions(clicks)
    if implementation == "ours":
        from sessionrec.model.sessions import Sessions
        from sessionrec.model.train import train
        from sessionrec.model.vocab import Vocabulary

        vocab = Vocabulary(frame[ITEM])
        _, log = train(config, Sessions.from_frame(frame, vocab), len(vocab), progress=False)
        return Run("ours", log.events, log.seconds)
    module = load_official(official)
    data = frame.rename(columns={SESSION: "SessionId", ITEM: "ItemId", TIME: "Time"})[["SessionId", "ItemId", "Time"]]
    model = module.GRU4Rec(**official_parameters(config), n_epochs=config.epochs, device=torch.device("cpu"))
    with _timed_batches(module) as clock, contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        model.fit(data, compatibility_mode=False)
    if getattr(model, "error_during_train", False):
        raise DataError("the official GRU4Rec diverged (NaN loss)")
    return Run("official", clock.events, clock.seconds)


@dataclass
class _Clock:
    events: int = 0
    seconds: float = 0.0


@contextlib.contextmanager
def _timed_batches(module: ModuleType) -> Iterator[_Clock]:
    """Counts the official's training targets and times its epochs: its session iterator, wrapped while it trains."""
    clock, base = _Clock(), module.SessionDataIterator

    class Timed(base):
        def __call__(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            start = time.perf_counter()
            for batch in super().__call__(*args, **kwargs):
                clock.events += len(batch[0])
                yield batch
            clock.seconds += time.perf_counter() - start

    module.SessionDataIterator = Timed
    try:
        yield clock
    finally:
        module.SessionDataIterator = base


def _in_fresh_process(function: Callable[..., Run], *args: Any) -> Run:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def run_train_bench(clicks: Path, official: Path, *, runs: int = 4, epochs: int = 3, preset: str = "official",
                    on_run: Callable[[Run], None] | None = None) -> dict[str, Any]:
    """The bench's record: median events/s of each implementation, their ratio and every run in order."""
    if runs < 1 or epochs < 1:
        raise DataError("the bench needs at least one run and one epoch")
    if not clicks.is_file():
        raise DataError(f"{clicks}: no such click file")
    load_official(official)  # a wrong folder fails before anything trains
    config = PRESETS[preset].updated(epochs=epochs)
    official_parameters(config)
    done = []
    for implementation in abba(runs):
        done.append(_in_fresh_process(measure, implementation, clicks, config, official))
        if on_run is not None:
            on_run(done[-1])
    return summary(done, config, preset, clicks, official)


def summary(done: list[Run], config: TrainConfig, preset: str, clicks: Path, official: Path) -> dict[str, Any]:
    medians = {name: statistics.median(r.events_per_s for r in done if r.implementation == name) for name in IMPLEMENTATIONS}
    return {
        "train_events_per_s": medians["ours"],
        "official_train_events_per_s": medians["official"],
        "ratio": medians["ours"] / medians["official"],
        "runs": [{**asdict(r), "events_per_s": r.events_per_s} for r in done],
        "preset": preset, "epochs": config.epochs, "threads": 1, "clicks": str(clicks), "official": str(official),
    }
