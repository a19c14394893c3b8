"""`fercli merge`: join 'clips' artifacts (shards of a job array, or several databases)."""

from __future__ import annotations

from typing import List

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples
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
    parts, identities, lineages = [], [], []
    for path in paths:
        clips, identity, lineage = artifacts.load_clips(path, "merge")
        parts.append(clips)
        identities.append(identity)
        lineages.append(lineage)
    names = [artifacts.display_name(p) for p in paths]
    out = stage.merge(parts, names, prefix_ids, [stage.stem(p) for p in paths])
    entry = artifacts.lineage_entry("merge", {"inputs": len(paths), "prefix_ids": prefix_ids, "class_names": out.class_names}, identities)
    artifacts.save_clips(output, out, artifacts.combine_lineage(lineages, entry))
    err.print(f"merge: {len(paths)} artifacts -> {len(out)} clips, {len(out.frames)} frames, {len(out.class_names)} classes", soft_wrap=True)
