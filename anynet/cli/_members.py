"""``anynet train --members N``: N networks trained at once, a table of them, and the ensemble
(or its best member) saved."""

from __future__ import annotations

import warnings

import numpy as np

from .. import __version__
from .. import backend as B
from ._common import _logger


def _train_ensemble(args, net, X, t, members, options, metadata, table, task, n_val, out) -> int:
    """``train --members N``: N networks (seeds ``--seed`` + i) trained at once; prints a table of the
    members and saves the ensemble, or with ``--keep best`` the best member as a plain model."""
    from ..checkpoints import save
    from ..ensemble import Ensemble

    ens = Ensemble(
        net.sizes,
        members=members,
        activation=net.activation,
        output_activation=net.output_activation,
        init=net.init,
        seed=args.seed,
        dtype=args.dtype,
        backend=net.backend,
        device=args.device,
    )
    lrs = options["lr"]
    _logger(args.quiet)(f"training {members} members at once, lr {', '.join(f'{v:g}' for v in sorted(set(lrs)))}")
    # a member that diverges is marked in the table (every member diverging ends in one error line)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        verbose = 0 if args.quiet else 1
        ens.fit(X, t, epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=verbose, **options)
    ens.metadata = metadata
    monitor = "val_loss" if n_val else "loss"
    best = ens.best_index(monitor)
    if args.keep == "best":
        model = ens.member(best)
        model.metadata = dict(metadata)
        save(model, out)
    else:
        save(ens, out)
    percent = task == "classification"
    head = f"  {'member':>6}  {'seed':>5}  {'lr':>8}  {'epochs':>6}  {'loss':>10}  {'val loss':>10}"
    head += f"  {'val acc':>8}" if percent and n_val else ""
    lines = [f"anynet {__version__} train: {table.source} -> {out}", "", head]
    for i, h in enumerate(ens.histories):
        kept = h.best_epoch if h.restored_best else -1
        row = f"  {i:>6}  {ens.seeds[i]:>5}  {lrs[i]:>8.3g}  {h.epochs:>6}  {_pct_or_loss(h.loss, kept, False):>10}"
        row += f"  {_pct_or_loss(h.val_loss, kept, False):>10}"
        row += f"  {_pct_or_loss(h.val_accuracy, kept, True):>8}" if percent and n_val else ""
        if i in ens.diverged:
            row += "  diverged"
        elif i == best:
            row += f"  <- best {monitor.replace('_', ' ')}"
        lines.append(row)
    saved = f"member {best} (a plain model)" if args.keep == "best" else f"the ensemble of {members} members"
    wall = max(h.wall_time for h in ens.histories)
    lines += [
        "",
        f"  {'time':<12}{wall:.2f} s for all {members} members",
        f"  {'backend':<12}{ens.backend} on {ens.device}, {B.dtype_name(ens.dtype)}",
        f"  {'network':<12}{'-'.join(map(str, ens.sizes))}, {ens.activation} -> {ens.output_activation}",
        f"  {'model':<12}{out}: {saved}",
    ]
    print("\n".join(lines))
    return 0


def _pct_or_loss(values: list[float], kept: int, percent: bool) -> str:
    if not values:
        return "-"
    return f"{100 * values[kept]:.1f}%" if percent else f"{values[kept]:.4g}"
