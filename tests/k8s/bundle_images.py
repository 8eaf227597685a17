"""Migration bundle images the test node can "pull": OCI images the tests define as folders.

An application team ships its migration set as an image; the operator's migration pods
take it either as an image volume or by running the image in an init container that
copies the set into an `emptyDir`. The test node has no registry and no image store, so
a test registers each bundle image it uses here: a reference and a host folder that *is*
the image's content (``F/migrations/clinic/env.py`` is the image's
``/migrations/clinic/env.py``). `refuse` registers a reference whose pulls fail, so a
test can watch a pod wait with `ErrImagePull` / `ImagePullBackOff`; a later `add` of the
same reference lets the pod start, as a registry that heals would.

The digest of an image is sha256 over its folder's files (relative paths, contents, and
symlink targets), taken when it is added: containers of the image report
``REF@sha256:<hex>`` as their `imageID`. The folder should not change after `add`; a
test that wants other contents adds the reference again. Files keep their own owners and
modes (the test node mounts the folder read-only as it is): write them 0644 and folders
0755, as an image build leaves them, so any container user can read them (`write_bundle`
does).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_HOST_ROOT = Path("/")


class PullError(Exception):
    """An image cannot be pulled (yet); ``message`` says why, as a registry would."""

    def __init__(self, reference: str, message: str) -> None:
        super().__init__(f'failed to pull image "{reference}": {message}')
        self.reference = reference
        self.message = message


@dataclass(frozen=True)
class BundleImage:
    reference: str
    folder: Path
    digest: str
    """``sha256:<hex>`` of the folder's contents when the image was added."""

    @property
    def image_id(self) -> str:
        return f"{self.reference}@{self.digest}"

    def top_level(self) -> list[Path]:
        """The image's top-level entries; the test node binds each at ``/<name>``."""
        return sorted(self.folder.iterdir())


def folder_digest(folder: Path) -> str:
    """``sha256:<hex>`` over every file and symlink under ``folder``, in path order.

    Each entry contributes its kind, relative path and content (a symlink its target),
    length-prefixed so no two different trees hash alike."""
    digest = hashlib.sha256()
    entries = sorted(
        (path.relative_to(folder).as_posix(), path)
        for path in folder.rglob("*")
        if path.is_symlink() or path.is_file()
    )
    for relative, path in entries:
        if path.is_symlink():
            kind, content = b"L", os.readlink(path).encode()
        else:
            kind, content = b"F", path.read_bytes()
        name = relative.encode()
        digest.update(kind + len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return f"sha256:{digest.hexdigest()}"


def write_bundle(folder: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` (path inside the image -> content) under ``folder``, files 0644 and
    folders 0755 as an image build leaves them; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for relative, content in files.items():
        target = folder / relative.lstrip("/")
        for parent in reversed(target.relative_to(folder).parents[:-1]):
            (folder / parent).mkdir(exist_ok=True)
            (folder / parent).chmod(0o755)
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
        target.chmod(0o644)
    return folder


class BundleImages:
    """The bundle images the test node knows: pullable ones and refused ones. Safe to use
    from the test while the node's threads read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._images: dict[str, BundleImage] = {}
        self._refused: dict[str, str] = {}

    def add(self, reference: str, folder: Path) -> BundleImage:
        """Register (or replace) the image ``reference`` with ``folder`` as its content;
        a refused reference becomes pullable."""
        folder = folder.resolve()
        if not folder.is_dir():
            raise ValueError(f"bundle image {reference!r}: {folder} is not a folder")
        # The test node binds the top-level entries over the host's root (see
        # tests/k8s/pod_worker.py): one named like a host folder would hide it (/usr, /etc).
        hiding = sorted(e.name for e in folder.iterdir() if (_HOST_ROOT / e.name).exists())
        if hiding:
            raise ValueError(
                f"bundle image {reference!r}: top-level entries {hiding} would hide the "
                "host's folders of the same names; keep the content under folders of its "
                "own (e.g. migrations/)"
            )
        image = BundleImage(reference, folder, folder_digest(folder))
        with self._lock:
            self._images[reference] = image
            self._refused.pop(reference, None)
        return image

    def refuse(self, reference: str, message: str) -> None:
        """Make pulls of ``reference`` fail with ``message`` until it is added."""
        with self._lock:
            self._images.pop(reference, None)
            self._refused[reference] = message

    def knows(self, reference: str) -> bool:
        """Whether ``reference`` is registered, pullable or refused: the node takes pods
        of it (and pods of images it does not know stay unscheduled)."""
        with self._lock:
            return reference in self._images or reference in self._refused

    def pull(self, reference: str) -> BundleImage:
        """The image of ``reference``; `PullError` when it is refused or unknown."""
        with self._lock:
            image = self._images.get(reference)
            refused = self._refused.get(reference)
        if image is not None:
            return image
        if refused is None:
            refused = f"{reference}: not found"
        raise PullError(reference, refused)
