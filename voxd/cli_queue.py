"""The queue on the command line: ``voxd add``, ``jobs``, ``retry``, ``report`` and ``cancel``.

Each reads the SQLite store directly; none needs the daemon running, torch or a model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from .config import Settings, load_settings
from .errors import VoxdError


def settings_for(args: argparse.Namespace, *, engine: bool = True) -> Settings:
    """The settings a subcommand runs with: the config file, then ``--engine`` where it was given;
    ``engine = "auto"`` made the engine it stands for here, unless the command needs none."""
    overrides = {}
    if getattr(args, "engine", None):
        overrides["engine"] = args.engine
    settings = load_settings(args.config, **overrides)
    if engine:
        from .tts.auto import resolve

        settings, _ = resolve(settings)
    return settings


def cmd_add(args: argparse.Namespace) -> int:
    from .files import sha256_file
    from .service.store import Store

    settings = settings_for(args, engine=False)
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)
    status = 0
    for name in args.files:
        src = Path(name)
        if not src.is_file():
            print(f"{src}: no such file", file=sys.stderr)
            status = 1
            continue
        digest = sha256_file(src)
        existing = store.by_sha256(digest)
        if existing is not None:
            print(f"{src.name}: already job {existing.id} ({existing.status.value})")
            continue
        target = _copy_into(src, inbox)
        job, _ = store.put(digest, target)
        print(f"{src.name}: queued as job {job.id}")
    return status


def _copy_into(src: Path, inbox: Path) -> Path:
    """Copy under a temporary name, then rename: the daemon never sees half a file.

    The free name is picked after the copy, just before the rename, so a file that
    took ``src.name`` in the inbox meanwhile is never replaced.
    """
    from .files import new_file_mode, rename_into_place, temp_beside, unique_path

    # the mode cp gives (0666 less the umask), not a temp file's 0600: the daemon may run as another user
    with temp_beside(inbox / src.name, mode=new_file_mode()) as tmp:
        shutil.copyfile(src, tmp)
        target = unique_path(inbox, src.name)
        rename_into_place(tmp, target)
    return target


def cmd_jobs(args: argparse.Namespace) -> int:
    from .service.store import Store

    settings = settings_for(args, engine=False)
    jobs = Store(settings.db_path).jobs()
    if args.json:
        rows = []
        for job in jobs:
            row = asdict(job)
            row["status"] = job.status.value
            row["speed"] = job.speed
            row["eta_seconds"] = job.eta_seconds
            rows.append(row)
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not jobs:
        print("no jobs yet: drop an EPUB into", settings.inbox_dir)
    else:
        from .service.joblist import table

        # the terminal's width (COLUMNS first); none when printing to a pipe or a file
        print(table(jobs, shutil.get_terminal_size((0, 0)).columns))
    from .service.disk import report

    print()
    for label, text, _ok in report(settings):
        print(f"{label:<6} {text}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from .service.store import Store

    settings = settings_for(args)
    store = Store(settings.db_path)
    job = store.get(args.id)
    if job is None:
        raise VoxdError(f"no job {args.id}")
    if args.flagged or args.chunks:
        from .cli_readback import respeak

        count = respeak(settings, store, job, flagged=args.flagged, chunks=args.chunks)
        print(f"speaking {count} chunk(s) of job {job.id} again")
    if not store.retry(args.id, max_hours=args.max_hours):
        raise VoxdError(f"job {args.id} is {job.status.value}; only done, failed or cancelled jobs can be retried")
    print(f"job {args.id} queued again" + ("" if args.max_hours is None else f", up to {args.max_hours:g} hours"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """What the read-back found in a job: the flagged chunks, with what was heard."""
    from .cli_readback import report

    return report(settings_for(args, engine=False), args.id, json_out=args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    from .service.store import Store

    settings = settings_for(args, engine=False)
    store = Store(settings.db_path)
    job = store.get(args.id)
    if job is None:
        raise VoxdError(f"no job {args.id}")
    if store.cancel(args.id, purge=args.purge):
        print(f"job {args.id} cancelled")
    elif not (args.purge and job.status.value in ("cancelled", "failed")):
        raise VoxdError(f"job {args.id} is {job.status.value}; only queued or running jobs can be cancelled"
                        + (", and only cancelled or failed ones purged" if args.purge else ""))
    if args.purge:
        from .service.disk import purge_job, size

        removed, freed = purge_job(settings, store, args.id)
        print(f"removed {removed} of its chunks ({size(freed)}) from the cache"
              + ("; the daemon removes any it renders before it stops" if job.status.value == "running" else ""))
    return 0
