"""The README's by-hand block, run as written in a shell: `sessionrec up`, a worker, a replay, tail, `sessionrec down`.

Only what the block reads from outside is prepared: the checkpoint it names
(runs/movielens: a small untrained network over every movie, standing in for
the bench's) and ../shared/data beside the working folder. The broker and
Redis are the ones `sessionrec up` starts; the worker's web port is turned
off through its setting, so the test never collides with a worker on 6066.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from sessionrec.model import checkpoint
from sessionrec.model.config import PRESETS
from sessionrec.model.data import ITEM, data_dir
from sessionrec.model.movielens import load_ratings
from sessionrec.model.network import GRU4Rec
from sessionrec.model.vocab import Vocabulary
from tests.test_services import port_open, process_gone

ROOT = Path(__file__).resolve().parent.parent
MARK = "<!-- tests/test_readme.py runs the block below as written -->"


def by_hand_block() -> str:
    text = (ROOT / "README.md").read_text()
    after = text[text.index(MARK) + len(MARK) :]
    match = re.match(r"\s*```bash\n(.*?)\n```", after, re.S)
    assert match, "the marked block is a ```bash fence"
    return match.group(1)


def test_the_by_hand_movielens_block_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_dir().resolve())
    torch.manual_seed(0)
    config = PRESETS["movielens"].updated(layers=[8])
    movies = Vocabulary(load_ratings()[ITEM].unique().tolist())
    checkpoint.save(checkpoint.Checkpoint(net=GRU4Rec(config.network, len(movies)), config=config, vocab=movies), work / "runs" / "movielens")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}  # nothing of the test run's own servers
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", SESSIONREC_WEB_PORT="0")
    block = by_hand_block()
    done = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if "  →  " in line]
    assert len(lines) == 10 and all(" model v" in line for line in lines)
    assert any(re.search(r"clicked \d+ .+\(\d{4}\)", line) for line in lines)  # titles next to movie ids
    up = re.search(r"Tansu 127\.0\.0\.1:(\d+) \(pid (\d+)\) and Redis redis://127\.0\.0\.1:(\d+)/0 \(pid (\d+)\) are up", done.stderr)
    assert up, done.stderr[-2000:]
    kafka_port, tansu_pid, redis_port, redis_pid = map(int, up.groups())
    assert "stopped Tansu" in done.stderr and "stopped Redis" in done.stderr
    assert process_gone(tansu_pid) and process_gone(redis_pid) and not port_open(kafka_port) and not port_open(redis_port)
    assert not (work / "runs" / "local-servers.json").exists()
