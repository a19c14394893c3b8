"""`fercli merge`: join 'clips' artifacts (shards of a job array, or several databases)."""

from __future__ import annotations

import contextlib
from typing import List

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, progress_bar
from fercli.errors import FercliError
from fercli.protocol.modelfile import save_model_file


@app.command(help="Concatenate 'clips' artifacts made with the same parameters (shards in order, or databases; classes reconciled by name), "
                  "or join the fold models of one run (train --fold k) into its --folds all model.",
             epilog=examples("fercli merge shard-0.h5 shard-1.h5 -o all.h5", "fercli merge fold0/static.h5 fold1/static.h5 -o static.h5"))
def merge(
    paths: List[str] = typer.Argument(..., help="Input 'clips' artifacts in the order to concatenate ('-' = standard input, once), or fold models (any order)."),
    output: str = OutputOpt,
    prefix_ids: bool = typer.Option(False, "--prefix-ids", help="Namespace clip ids as <file stem>:<id> (needed when inputs share ids)."),
) -> None:
    from fercli import merge as stage

    if paths.count("-") > 1:
        raise FercliError("standard input ('-') can be given only once")
    from fercli.protocol.foldjoin import artifact_kind, join_model_files

    if artifact_kind(paths[0]) == "model":
        record, lineage, arrays, folds = join_model_files(paths)
        save_model_file(output, record, lineage, arrays)
        err.print(f"merge: {len(paths)} fold models -> {output} (folds {', '.join(map(str, folds))})", soft_wrap=True, highlight=False)
        return
    names = [artifacts.display_name(p) for p in paths]
    with contextlib.ExitStack() as stack:  # every input open at once, read in turn a batch at a time
        readers = [stack.enter_context(artifacts.open_clips(path, "merge")) for path in paths]
        plan = stage.plan_merge([r.header for r in readers], names, prefix_ids, [stage.stem(p) for p in paths])
        entry = artifacts.lineage_entry("merge", {"inputs": len(paths), "prefix_ids": prefix_ids, "class_names": plan.class_names},
                                        [r.identity for r in readers])
        lineage = artifacts.combine_lineage([r.lineage for r in readers], entry)
        with progress_bar("merge") as progress, artifacts.clip_writer(output, lineage, plan.meta) as writer:
            stage.write_merged(readers, writer, plan, progress)
    err.print(f"merge: {len(paths)} artifacts -> {writer.n_clips} clips, {writer.n_frames} frames, {len(plan.class_names)} classes", soft_wrap=True)
