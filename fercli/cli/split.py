"""`fercli split`: subject-independent k-fold assignment, official splits kept."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, number_opt, progress_bar
from fercli.errors import FercliError


@app.command(help="Assign subject-independent, class-stratified folds (thesis 3.3.1); official splits (FER2013, SFEW/AFEW, CIFAR) are kept.",
             epilog=examples("fercli split planes.h5 --folds 10 --by subject -o folds.h5"))
def split(
    path: str = typer.Argument(..., help="Input 'clips' artifact ('-' = standard input)."),
    output: str = OutputOpt,
    folds: Optional[int] = number_opt(None, "--folds", "-k", help="Number of folds (default 10).", min=2, max=100_000),
    by: str = typer.Option("subject", "--by", help="subject (no subject in two folds), clip (plain stratified folds) or identity (no subject ids: faces clustered into identities by dlib face descriptors, which become the subjects)."),
    seed: int = number_opt(0, "--seed", help="Seed of the assignment's tie-breaking order.", min=0, max=2**63 - 1),
    ignore_official: bool = typer.Option(False, "--ignore-official", help="Assign folds even if the dataset has an official split (the split column is kept beside them)."),
) -> None:
    from fercli import split as stage

    if by not in stage.BY:
        raise FercliError(f"--by must be subject, clip or identity (got '{by}')")
    if folds is not None and folds < 2:
        raise FercliError(f"--folds must be at least 2 (got {folds})")
    with artifacts.open_clips(path, "split") as reader:  # folds need the per-clip arrays; frames stream through
        _split(reader, output, folds, by, seed, ignore_official)


def _split(reader: artifacts.ClipReader, output: str, folds: Optional[int], by: str, seed: int, ignore_official: bool) -> None:
    from fercli import split as stage

    clips, identity, lineage, name = reader.header, reader.identity, reader.lineage, reader.name
    if len(clips) == 0:
        raise FercliError(f"{name} holds no clips")
    if stage.has_official_split(clips) and not ignore_official:
        parts = ", ".join(f"{k or '(none)'} {v}" for k, v in stage.official_report(clips).items())
        if folds is not None:
            raise FercliError(f"{name} has an official split ({parts}); add --ignore-official to assign {folds} folds instead")
        out = stage.keep_official(clips)
        params = {"official_split": "kept", "folds": None}
        message = f"split: {name} has an official split ({parts}): kept, no folds assigned (--ignore-official --folds N for cross-validation)"
    else:
        k = 10 if folds is None else folds
        out = stage.split(clips, k, by, seed)
        params = {"folds": k, "by": by, "seed": seed, "ignore_official": ignore_official}
        message = "split: " + stage.describe(stage.fold_report(out, out.folds), by)
        if by == "identity":  # the clusters go into the lineage, for a reviewer to see
            found = params["identities"] = out.meta["identities"]
            err.print(f"split: {found['identities']} identities inferred from face descriptors (threshold {found['threshold']:g}), "
                      f"clips per identity: {', '.join(map(str, found['sizes'][:20]))}{' ...' if len(found['sizes']) > 20 else ''}", soft_wrap=True)
    with progress_bar("split") as progress, artifacts.clip_writer(output, [*lineage, artifacts.lineage_entry("split", params, [identity])], out.meta) as writer:
        stage.write_split(reader, writer, out, progress)
    err.print(message, soft_wrap=True)
