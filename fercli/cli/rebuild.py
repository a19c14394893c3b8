"""`fercli rebuild`: the smaller LB-MBNet from a pruning artifact, kept channels' weights carried over (thesis 5.3.2)."""

from __future__ import annotations

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, number_opt


@app.command(help="Build the pruned model at the new expansion ratio with the kept kernels' weights (thesis 5.3.2).",
             epilog=examples("fercli rebuild r80-to-r6.h5 -o r6-init.h5"))
def rebuild(
    pruning_path: str = typer.Argument(..., metavar="PRUNING", help="Pruning artifact written by `fercli prune` ('-' = standard input)."),
    output: str = OutputOpt,
    step: int = number_opt(0, "--step", help="Which ratio of a segmented schedule (0 = the first).", min=0, max=10_000),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare the rebuilt model with the masked source on random inputs."),
) -> None:
    from fercli import rebuild as R
    from fercli.models.summary import parameter_counts
    from fercli.models import registry
    from fercli.prune import load_pruning

    pruning, identity, lineage = load_pruning(pruning_path, "rebuild")
    record = R.rebuild(pruning, step)
    params = {"step": step, "expansion": pruning.schedule[step]}
    if check:
        diff = R.check_equivalence(pruning, record, step)
        record.extra["rebuilt"]["max_abs_logit_diff"] = diff
        params["max_abs_logit_diff"] = diff
    artifacts.save_model(output, record, [*lineage, artifacts.lineage_entry("rebuild", params, [identity])], arrays=pruning.source_arrays)
    src = registry.from_record(pruning.source)
    before = parameter_counts(src)["trainable_params"]
    after = parameter_counts(registry.from_record(record))["trainable_params"]
    msg = (f"rebuild: {record.arch} r={pruning.source.config.get('expansion')} -> r={pruning.schedule[step]}, "
           f"{before:,} -> {after:,} trainable parameters")
    if check:
        msg += f"; max |logit difference| vs the masked source {diff:.2e}"
    err.print(msg)
