"""Safe file writing: check a destination before any work, then write it atomically.

``writable_path`` says, before a long job starts, why its output could not be written;
``atomic_write`` fills a temporary file beside the destination and renames it into place, so a
crash never leaves a half-written file. Checkpoints, pictures and the CLI's outputs all write this way.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def writable_path(path: str | os.PathLike, label: str, example: str) -> Path:
    """``path`` checked as a file to write, before any work is spent on what goes there: not a folder,
    in a folder that exists and is writable. ``label`` opens each message; ``example`` is a file name
    to suggest in place of a folder."""
    path = Path(path)
    if path.is_dir():
        msg = f"{label}: it is a folder; give a file name such as {str(path / example)!r}"
        raise IsADirectoryError(msg)
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        msg = f"{label}: {str(folder)!r} is a file, not a folder"
        raise NotADirectoryError(msg)
    if not folder.is_dir():
        msg = f"{label}: the folder {str(folder)!r} does not exist; create it first"
        raise FileNotFoundError(msg)
    if not os.access(folder, os.W_OK):
        msg = f"{label}: the folder {str(folder)!r} is not writable"
        raise PermissionError(msg)
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write(tmp)`` fill a temporary file beside ``path`` (same suffix), flush it to disk, give it
    the permissions a plain ``open(path, "w")`` would, and rename it into place: a crash or an error
    in ``write`` never leaves ``path`` half-written, and an existing ``path`` stays as it was.

    The temporary file is named ``.NAME.HOST.PID.XXXX.SUFFIX``; a writer killed outright (SIGKILL,
    power loss) cannot remove its own, so each write first clears those of ``path`` left by processes
    of this host that no longer exist. Another writer's file, live or on another host, is left alone.
    """
    _clear_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes the file private (0600)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk or a lost mount: say which file, not "[Errno 28]" alone
        Path(tmp).unlink(missing_ok=True)
        why = exc.strerror if exc.errno is not None else str(exc)
        error = type(exc)(f"cannot write {str(path)!r}: {why}")
        error.errno = exc.errno
        raise error from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permissions ``open(path, "w")`` leaves: an existing file's own (a private 0600 file stays
    private), else 0666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


#: this machine's name as it appears in temporary file names (one word: no dots)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _clear_stale(path: Path) -> None:
    """Remove the temporary files of ``path`` whose writer, a process of this host, has died."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process on POSIX only (on Windows it signals)
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}\.(\d+)\.[^.]+{re.escape(path.suffix)}")
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{_HOST}.*"):
        match = pattern.fullmatch(tmp.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        if tmp.is_symlink() or not tmp.is_file():  # not a file a writer left (a folder, say): not ours to remove
            continue
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a number no pid can be
        return True
    return True
