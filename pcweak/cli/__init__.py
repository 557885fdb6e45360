"""The ``pcweak`` command. Every sub-command wires Python functions that can be called directly.

    pcweak info SCENE                      JSON summary of a scene
    pcweak simulate SCENE --weak KIND ...  weak labels drawn from ground truth -> weak.npz (folders: resumable)
    pcweak import SCENE TABLE... -o W      weak labels from another tool's tables -> weak.npz (folders: resumable)
    pcweak masks SCENE --sam MODEL -o DIR  SAM masks (and CLIP scores) of a scene's frames (folders: resumable)
    pcweak label SCENE --weak W -o OUT     pseudo-labels from weak labels (folders: resumable)
    pcweak evaluate SCENE --pseudo P       score pseudo-labels against ground truth
    pcweak evaluate kitti:R --detections D KITTI AP of result files, as the devkit
    pcweak export LABELS --format F -o DIR ScanNet / SemanticKITTI / Semantic3D submission files
    pcweak viz SCENE --pseudo P [--png F]  look at a scene and its labels (window, picture or file)
    pcweak bench NAME --json               a benchmark, printing one JSON object
    pcweak fit|validate|test|predict --config configs/X.yaml   training (LightningCLI)
    pcweak demo                            the main job on the built-in synthetic scene

One module per command (``info``, ``weak_files``: simulate and import, ``label``, ``masks``,
``evaluate``, ``export``, ``viz``, ``run``: demo and bench), ``parser`` building the argument
parser, ``common`` the checks and helpers several commands share; this module runs a command
line (errors as one line, Ctrl-C and SIGTERM, warnings, the training commands).
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
import warnings
from typing import Any, Sequence

from ..errors import PcweakError
from .parser import build_parser, command_names


# commands whose interrupted run the same command continues (finished outputs are kept)
RESUMABLE = {"label": "labels only the scenes without a current output",
             "masks": "makes only the frames without masks",
             "fit": "makes only the pseudo-labels not yet made (a trainer interrupted stops by itself)"}


def _interrupted(command: str, debug: bool, in_trainer: bool = False) -> int:
    """Ctrl-C (or SIGTERM, ``_stop_on_sigterm``): one line instead of a KeyboardInterrupt
    traceback, exit status 128 + the signal (130, 143), as shells report it, also where the
    trainer stopped gracefully (``in_trainer``; Lightning itself would exit 1). Outputs are
    renamed into place whole, so none is left half-written."""
    if debug:
        raise KeyboardInterrupt
    import signal
    again = None if in_trainer else RESUMABLE.get(command)
    signum = _stopped_by or signal.SIGINT
    if _first_process():  # a distributed run's other processes stop alike: one line for all
        said = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
        print(f"\npcweak {command}: {said}; every output written is whole"
              + (f"; the same command {again}" if again else ""), file=sys.stderr)
    return 128 + signum


def _first_process() -> bool:
    """Whether this process is the first of a distributed run (or runs alone): Lightning starts
    the others with ``LOCAL_RANK`` (and ``NODE_RANK`` on other machines), torchrun sets ``RANK``."""
    env = os.environ
    if env.get("RANK") is not None:
        return env["RANK"] == "0"
    return env.get("LOCAL_RANK", "0") == "0" and env.get("NODE_RANK", "0") == "0"


def _end_process_group() -> None:
    """Close this process's part of a distributed run that ended whole (a no-op alone). Left to
    the interpreter's exit, gloo's threads were destroyed still joinable now and then: "terminate
    called without an active exception" and exit status -6 (SIGABRT) after a two-process predict
    had written every prediction. Not after an error or an interrupt: the other processes may
    still be inside a collective, on which destroying an NCCL group can wait."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether ``e`` stands for a Ctrl-C: a compiled extension imported while it came (pybind11's
    ImportError "initialization failed") raises its own error with the KeyboardInterrupt as
    its cause."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _error_line(command: str, e: BaseException, debug: bool, hint: str = "") -> int:
    """End ``command`` on the error ``e``: one line and exit status 2 (``hint`` appended; a
    MemoryError said as ``_out_of_memory`` says it), or the interrupt it stands for; under
    PCWEAK_DEBUG, ``e`` itself with its traceback."""
    if _caused_by_interrupt(e):
        return _interrupted(command, debug)
    if isinstance(e, BrokenPipeError) and _stdout_reader_gone():
        return _stop_writing_stdout()
    if debug:
        raise e
    why = _out_of_memory(e) if isinstance(e, MemoryError) else f"{e}{hint}"
    print(f"pcweak {command}: error: {why}", file=sys.stderr)
    return 2


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (``pcweak info S | head``),
    as opposed to a pipe of pcweak's own (a worker process's) breaking: poll reports POLLERR on
    the write end of a pipe without readers."""
    import select
    import stat
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), stdout replaced or closed
        return False


def _stop_writing_stdout() -> int:
    """End quietly when the reader of standard output has gone, as a command killed by SIGPIPE
    would (exit status 141): Python ignores SIGPIPE, so the write raised instead, and the
    interpreter's last flush of what is still buffered would raise again at exit."""
    import signal
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _out_of_memory(e: MemoryError) -> str:
    """One line for a MemoryError: what could not be had (numpy names the size), the memory
    available now, and where to look."""
    from ..parallel import available_memory_gb
    free = available_memory_gb()
    return (f"out of memory ({str(e) or 'an allocation failed'}; {'unknown' if free is None else f'{free:.1f} GiB'} "
            f"available now): a smaller input or setting, fewer --workers or --voxel for a large scan; "
            f"PCWEAK_DEBUG=1 shows where")


def _plain_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings reach CLI users as one plain line, without source paths, on a line of its own
    when a progress bar is drawn (``tqdm.write`` moves the bar below it)."""
    from tqdm import tqdm
    tqdm.write(f"pcweak: warning: {message}", file=file or sys.stderr)


def _quiet_third_party_deprecations() -> None:
    """Third-party deprecation notices (gpytorch's dependencies scripting functions at import,
    spconv's build tools asking for the locale, Lightning calling torch's old pytree API) are
    their authors' business, not the user's; pcweak's own still show."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("default", category=category, module=r"pcweak(\.|$)")


class _NoLightningAdverts(logging.Filter):
    """Drops Lightning's tip advertising its cloud experiment tracker (``litlogger``), logged at
    every fit, test and predict whose loggers are not that service's: pcweak's runs log locally
    (CSV, TensorBoard). Lightning's other lines (devices, model summary) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def _drop_lightning_adverts() -> None:
    """``_NoLightningAdverts`` on the loggers Lightning's ``rank_zero_info`` logs through
    (``lightning.pytorch``'s or ``lightning.fabric``'s ``utilities.rank_zero``, whichever was
    imported last), once."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoLightningAdverts) for f in logger.filters):
            logger.addFilter(_NoLightningAdverts())


def _stop_on_sigterm() -> None:
    """SIGTERM (``kill``, ``timeout``, a batch scheduler ending or pre-empting a job) stops a
    command as Ctrl-C does: its workers ended, one line, exit status 143, and a fit saves
    ``interrupted.ckpt`` (otherwise Python dies at once, saying nothing and saving nothing)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        global _stopped_by
        _stopped_by = signum
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)


_stopped_by: int | None = None  # the signal a _stop_on_sigterm handler turned into KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the console command (not a caller's main([...])): its process to stop
        _stop_on_sigterm()
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..train.lightning_cli import TRAIN_COMMANDS, denied_import
    debug = os.environ.get("PCWEAK_DEBUG", "") not in ("", "0")
    # torch's one-off advice to library authors ("is_fx_tracing will return true ..."), logged
    # when spconv loads: not the user's business
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    _drop_lightning_adverts()  # training commands, bench detect, label's self-training
    if argv and argv[0] in TRAIN_COMMANDS:
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from ..train.lightning_cli import run_lightning_cli
        warnings.simplefilter("default")
        warnings.showwarning = _plain_warning
        _quiet_third_party_deprecations()
        try:
            code = int(run_lightning_cli(argv))
            _end_process_group()  # after a whole run only: torch can block on an NCCL group with work pending
            sys.stdout.flush()  # as below, after the group has ended whatever the reader did
            return code
        except KeyboardInterrupt:  # outside the trainer's own handling (parsing, making pseudo-labels)
            return _interrupted(argv[0], debug)
        except SystemExit as e:
            # the trainer's own handling: a graceful stop, then sys.exit(1) (InterruptedCheckpoint
            # has said how a fit resumes)
            if e.code == 1 and isinstance(e.__context__, KeyboardInterrupt):
                return _interrupted(argv[0], debug, in_trainer=True)
            raise
        except argparse.ArgumentError as e:  # the config or an option: jsonargparse's message, without its usage dump
            if debug:
                raise
            why = denied_import(str(e)) or f"{e}\n(pcweak {argv[0]} --help lists every option)"
            print(f"pcweak {argv[0]}: error: {why}", file=sys.stderr)
            return 2
        # OSError: a file missing, read-only or on a full disk; MisconfigurationException: a
        # trainer setting this machine cannot meet (accelerator, devices)
        except (PcweakError, ValueError, OSError, RuntimeError, MemoryError, MisconfigurationException) as e:
            return _error_line(argv[0], e, debug, " (PCWEAK_DEBUG=1 shows where)")
    parser = build_parser()
    if argv and not argv[0].startswith("-"):
        known = command_names(parser)
        if argv[0] not in known:
            close = difflib.get_close_matches(argv[0], known, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            print(f"pcweak: error: unknown command '{argv[0]}'{hint} (commands: {', '.join(known)})", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    warnings.showwarning = _plain_warning
    _quiet_third_party_deprecations()
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # output still buffered meets a reader that has gone here, not at exit
        return code
    except KeyboardInterrupt:
        return _interrupted(args.command, debug)
    # OSError: a file missing, read-only or on a full disk, each message naming the file
    except (PcweakError, ValueError, OSError, RuntimeError, ImportError, MemoryError) as e:
        return _error_line(args.command, e, debug)
