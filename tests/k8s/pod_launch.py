"""Start one container of a test pod: run as root inside a fresh mount namespace
(``unshare --mount --propagation private``), it builds the container's root, mounts the
pod's volumes in it, joins the pod's cgroup, enters the root and then becomes the
container's process through ``setpriv`` (user, groups, no-new-privileges, no
capabilities).

Usage: ``python pod_launch.py SPEC.json``; the spec is written by tests/k8s/pod_worker.py.
Standard library only: it runs before anything of the project is importable for the
container's user.

The "image" of a test pod is the host's filesystem, seen through an overlay: the
container's root is the host's root as a read-only lower layer with a private tmpfs
above it, so mount points the pod needs (``/backups``, ``/etc/pgbouncer/config``) and
anything it writes land in the overlay and vanish with the container; the host is not
changed. ``/proc``, ``/sys`` and the host's other mounts are bound in; ``/dev`` is a
small tmpfs with the usual device nodes. ``readOnlyRootFilesystem`` makes the overlay
read-only once the volumes are mounted.

Two things of the host must stay reachable for the container's user: the test's Python
and the project (``keep`` paths). A volume mounted over one of them (an ``emptyDir`` at
``/tmp`` while the project lives under ``/tmp``) hides it, and a folder on the way to it
that others may not enter (``/root``) bars it; both are mended inside the container's
root only: a world-readable tmpfs over the barring folder, then the kept path bound back
at its own place.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc.mount(raw(source), raw(target), raw(fstype), flags, raw(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source!r} on {target!r}: {os.strerror(errno)}")


def _bind(fd: int, target: str, read_only: bool) -> None:
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, "")
    if read_only:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, "")


def _make_target(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).touch()


def _same(path: str, fd: int) -> bool:
    try:
        here = os.stat(path)
    except OSError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _barring_folder(path: str, uid: int, groups: set[int]) -> str | None:
    """The outermost folder on the way to ``path`` the user may not enter."""
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        folder = str(Path(*parts[:depth]))
        info = os.stat(folder)
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def _join_cgroup(folder: str | None) -> None:
    if folder:
        Path(folder, "cgroup.procs").write_text("0\n")


def _host_mounts(own_root: str) -> list[str]:
    """The host's mount points but ``/``, outermost only (binding them recursively brings
    the rest), leaving out ``/dev`` (built anew) and the container's own root."""
    points: set[str] = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point != "/":
            points.add(point)

    def inside(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip("/") + "/")

    outermost = [p for p in points if not any(q != p and inside(p, q) for q in points)]
    return sorted(p for p in outermost if not inside(p, "/dev") and not inside(p, own_root))


def _build_root(scratch: str) -> str:
    """The container's root: the host's root under a private writable layer."""
    _mount("tmpfs", scratch, "tmpfs", 0, "mode=755")
    for name in ("upper", "work", "root"):
        os.mkdir(f"{scratch}/{name}")
    root = f"{scratch}/root"
    layers = f"lowerdir=/,upperdir={scratch}/upper,workdir={scratch}/work"
    _mount("overlay", root, "overlay", 0, layers)
    for point in _host_mounts(scratch):
        fd = os.open(point, os.O_PATH)
        _make_target(root + point, is_dir=os.path.isdir(point))
        _bind(fd, root + point, read_only=False)
        os.close(fd)
    dev = f"{root}/dev"
    os.makedirs(dev, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", 0, "mode=755")
    for name in DEVICES:
        fd = os.open(f"/dev/{name}", os.O_PATH)
        Path(dev, name).touch()
        _bind(fd, f"{dev}/{name}", read_only=False)
        os.close(fd)
    for name in ("pts", "shm"):
        os.mkdir(f"{dev}/{name}")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", 0, "mode=1777")
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{link}")
    return root


def main(spec_path: str) -> None:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    uid, gid = int(spec["uid"]), int(spec["gid"])
    groups = {int(g) for g in spec["groups"]} | {gid}
    # Opened before anything is mounted: a later mount may hide the source's path.
    mounts = [
        (
            os.open(m["source"], os.O_PATH),
            m["target"],
            bool(m["readOnly"]),
            os.path.isdir(m["source"]),
        )
        for m in sorted(spec["mounts"], key=lambda m: m["target"])
    ]
    kept = [(os.open(path, os.O_PATH), path) for path in spec["keep"]]
    barring = sorted({b for _, p in kept if (b := _barring_folder(p, uid, groups)) is not None})

    # Entered first, so that paths (and their symlinks: /var/run -> /run) resolve inside
    # it; the sources are reached through their descriptors, via /proc.
    _join_cgroup(spec.get("cgroup"))
    os.chroot(_build_root(spec["scratch"]))
    os.chdir("/")
    for fd, target, read_only, is_dir in mounts:
        _make_target(target, is_dir)
        _bind(fd, target, read_only)
    for folder in barring:
        _mount("tmpfs", folder, "tmpfs", 0, "mode=755,size=1m")
    for fd, path in kept:
        if not _same(path, fd):
            os.makedirs(path, exist_ok=True)
            _bind(fd, path, read_only=True)
    if spec["readOnlyRootFilesystem"]:
        _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, "")
    os.chdir(spec["workingDir"])
    command = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    command.append(f"--groups={','.join(str(g) for g in sorted(groups))}")
    if spec["noNewPrivileges"]:
        command.append("--no-new-privs")
    if uid != 0:
        command += ["--inh-caps=-all", "--bounding-set=-all"]
    os.execvpe("setpriv", [*command, "--", *spec["argv"]], spec["env"])  # noqa: S606


if __name__ == "__main__":
    main(sys.argv[1])
