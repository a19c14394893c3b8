"""The chapter targets' file names say what made them (issue 11 item 5): after a synthetic
run, a run on other data or with other settings plans new files instead of reusing -- and
relabelling -- the old ones.  Checked with `make -n` on a fake finished run: every file the
synthetic plan writes is touched in plan order, nothing is trained."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

# what a recipe line writes: -o FILE, --plot FILE, > FILE, tee FILE, mv CHECKPOINT FILE, export --onnx X --split (X-cnn/-gru)
_WRITES = re.compile(r"(?:\s-o|--plot|\s>|\btee|\bmv -f \S+)\s+(?!-\s|/dev/null)(\S+)")
_SPLIT_ONNX = re.compile(r"--onnx\s+(\S+)\.onnx\s+--split")


def make_n(target: str, out: Path, **variables: str) -> str:
    """The commands `make -n TARGET` would run (the venv's install stamp counts as made)."""
    args = ["make", "-n", "--no-print-directory", target, f"OUT={out}", *(f"{k}={v}" for k, v in variables.items())]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def written(plan: str) -> list[str]:
    files = []
    for line in plan.splitlines():
        files += [f.strip("'\"") for f in _WRITES.findall(line)]
        files += [f"{stem}-{part}.onnx" for stem in _SPLIT_ONNX.findall(line) for part in ("cnn", "gru")]
    return list(dict.fromkeys(files))


def fake_run(target: str, out: Path, **variables: str) -> list[str]:
    """Touch every file the plan writes, oldest first, as if the run had finished."""
    files = written(make_n(target, out, **variables))
    assert files, "the plan writes nothing"
    start = time.time() - len(files) - 10
    for i, f in enumerate(files):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).touch()
        os.utime(f, (start + i, start + i))
    return files


def trainings(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if re.search(r"fercli (train|prune|rebuild|synth|ingest|align|export)\b", line)]


@pytest.fixture
def data_folder(tmp_path):
    folder = tmp_path / "Oulu-CASIA"
    folder.mkdir()
    (folder / "S001").mkdir()
    (folder / "S001" / "001.jpeg").write_bytes(b"not read by make -n")
    return folder


@pytest.mark.parametrize("chapter,dataset", [("chapter3", "oulu"), ("chapter4", "ckplus")])
def test_new_data_after_a_synthetic_run_is_ingested_not_relabelled(tmp_path, data_folder, chapter, dataset):
    out = tmp_path / "out"
    fake_run(chapter, out)
    assert not trainings(make_n(chapter, out)), "the faked synthetic run is complete"
    plan = make_n(chapter, out, DATA=str(data_folder), DATASET=dataset)
    assert f"ingest {dataset} {data_folder}" in plan
    assert "synth --subjects 12 --clips-per-class 3" not in plan
    trained = [line for line in plan.splitlines() if " train " in line and "--task identity" not in line]
    assert trained and all(f"/{dataset}-" in line for line in trained)  # every model of the new data in its own folder


def test_changed_data_gets_a_new_identity(tmp_path, data_folder):
    out = tmp_path / "out"
    fake_run("chapter3", out, DATA=str(data_folder), DATASET="oulu")
    assert not trainings(make_n("chapter3", out, DATA=str(data_folder), DATASET="oulu"))
    (data_folder / "S001" / "002.jpeg").write_bytes(b"one more image")
    assert f"ingest oulu {data_folder}" in make_n("chapter3", out, DATA=str(data_folder), DATASET="oulu")


def test_chapter5_names_say_depth_expansion_and_pruning_history(tmp_path):
    out = tmp_path / "out"
    files = fake_run("chapter5", out)
    assert any(f.endswith("/r3-from-r12.h5") for f in files)
    # A segmented run keeps the one-shot models and trains only the new chain.
    seg = make_n("chapter5", out, CH5_SEGMENTS="8 6")
    assert "--expansion 12 " not in seg and "/r3-from-r12.h5 " not in seg
    assert re.search(r"prune \S+/r6-from-r12-r8\.h5 ", seg) and "-o " in seg
    assert re.search(r"-o \S+/r3-from-r12-r8-r6(\.ckpt)?\.h5", seg)
    # Another large ratio or depth is a new model, never the old file under a new name.
    assert re.search(r"train lb-mbnet .*--expansion 16 .*-o \S+/r16(\.ckpt)?\.h5", make_n("chapter5", out, CH5_LARGE="16"))
    assert re.search(r"-o \S+/r3-from-r16(\.ckpt)?\.h5", make_n("chapter5", out, CH5_LARGE="16"))
    deeper = make_n("chapter5", out, CH5_DEPTH="59")
    assert "--depth 59" in deeper and re.search(r"-o \S+/d59-\S+/r12(\.ckpt)?\.h5", deeper)


def test_finished_chapter4_does_not_export_again(tmp_path):
    """The split export writes live-cnn.onnx and live-gru.onnx: the target names them."""
    out = tmp_path / "out"
    fake_run("chapter4", out)
    plan = make_n("chapter4", out)
    assert "export" not in plan and not trainings(plan)


def test_every_chapter_row_has_a_target(tmp_path, data_folder):
    """Issue 11 item 7: the rows the chapter targets did not produce."""
    out = tmp_path / "out"
    ch3 = make_n("chapter3", out)
    assert re.search(r"train cnn-gru .*--input features --pool max", ch3)  # Table 3.5
    assert re.search(r"train multistream .*--config fusion=average .*--epochs 0", ch3)  # 3.1 (4)
    ch4 = make_n("chapter4", out, DATA=str(data_folder))  # the real-data defaults follow the thesis
    for net in ("mobilenet-v3", "mobilenet-v2"):  # Table 4.1: both nets, direct and pre-trained, all folds
        assert re.search(rf"train {net} \S+/aligned\.h5 --frame first-last .*--fold 9 ", ch4)  # fold by fold, then joined
        assert re.search(rf"merge \S+/fold0/{net}-direct\.h5 (\S+/fold\d/{net}-direct\.h5 ){{9}}-o ", ch4)
        assert re.search(rf"train {net} \S+/aligned\.h5 --init-from \S+identity-{net}-", ch4)
    ch5 = make_n("chapter5", out)
    assert re.search(r"train lb-mbnet .*--config depthwise=learned", ch5)  # 5.3.2
    for panel in ("se-r3.png", "se-r12-to-r3.png", "se-r3-from-r12.png"):  # Fig 5.4 (a), (b), (c)
        assert re.search(rf"--plot \S+/{re.escape(panel)}", ch5)


def test_extra_data_sets_add_table_4_1_columns(tmp_path):
    """FER2013/SFEW given: their single-database models and the cross-database model, evaluated on each."""
    out = tmp_path / "out"
    fer = tmp_path / "fer2013.csv"
    fer.write_text("emotion,pixels,Usage\n")
    sfew = tmp_path / "SFEW_2.0"
    (sfew / "Train" / "Happy").mkdir(parents=True)
    plan = make_n("chapter4", out, FER2013=str(fer), SFEW=str(sfew))
    assert f"ingest fer2013 {fer}" in plan and f"ingest sfew {sfew}" in plan
    assert re.search(r"train mobilenet-v3-small \S+/fer2013-\w+/clips\.h5 --size 96", plan)
    cross = re.search(r"train mobilenet-v3-small \S+/aligned\.h5 (\S+/fer2013-\w+/clips\.h5) (\S+/sfew-\w+/clips\.h5) --init-from", plan)
    assert cross
    assert re.search(r"evaluate \S+-cross-fer2013-\w+\+sfew-\w+\.h5 " + re.escape(cross.group(1)), plan)
    proc = subprocess.run(["make", "-n", "chapter4", f"OUT={out}", f"AFEW={sfew}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "needs SFEW" in proc.stderr
