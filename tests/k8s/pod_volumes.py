"""A test pod's volumes as host folders, laid out the way the kubelet lays them out.

- `configMap` and `secret`: the kubelet's atomic layout: the files live in a
  timestamped folder, `..data` links to it, and every top-level key is a link through
  `..data`, so an update swaps one link and a reader never sees half of it. `items`,
  `defaultMode`/`mode` and `optional` are honoured; files belong to root and the pod's
  `fsGroup`. `refresh` rewrites them when the object changed, as the kubelet's sync does.
- `emptyDir`: an empty folder anyone in the pod may write (0777, or the `fsGroup`'s with
  the set-group-id bit).
- `persistentVolumeClaim`: the claim must be `Bound`; its PersistentVolume's
  `hostPath.path` or `local.path` is the folder (hostPath volumes get no ownership
  change, as on a real node).

- `image`: not set up here. As on a real node, an image volume is pulled with the
  pod's images, when a container that mounts it starts (tests/k8s/pod_worker.py), and
  mounted read-only from the bundle image's folder (tests/k8s/bundle_images.py).

Anything else raises `MountError` (the kubelet's `FailedMount`), as does a missing
object; the runner retries.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Body = dict[str, Any]
Reader = Callable[[str, str | None, str], Body | None]
DEFAULT_MODE = 0o644
DATA_LINK = "..data"


class MountError(Exception):
    """A volume cannot be set up yet; the message says why."""


@dataclass
class Volume:
    name: str
    path: Path
    source: tuple[str, str] | None = None  # (kind, name) of a projected object
    version: str = ""
    """resourceVersion of the projected object last written."""


@dataclass
class PodVolumes:
    """The volumes of one pod under ``root``."""

    pod: Body
    root: Path
    read: Reader
    volumes: dict[str, Volume] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def fs_group(self) -> int | None:
        group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        return None if group is None else int(group)

    def set_up(self) -> None:
        for spec in self.pod["spec"].get("volumes") or []:
            if spec["name"] not in self.volumes and "image" not in spec:
                self.volumes[spec["name"]] = self._set_up(spec)

    def refresh(self) -> None:
        for spec in self.pod["spec"].get("volumes") or []:
            volume = self.volumes.get(spec["name"])
            if volume is not None and volume.source is not None:
                # The kubelet keeps the last contents of an object that went away.
                with contextlib.suppress(MountError):
                    self._project(spec, volume)

    def _set_up(self, spec: Body) -> Volume:
        name = spec["name"]
        if "emptyDir" in spec:
            path = self.root / "empty" / name
            path.mkdir(parents=True, exist_ok=True)
            self._own(path, 0o2777 if self.fs_group is not None else 0o777)
            return Volume(name, path)
        if "persistentVolumeClaim" in spec:
            return Volume(name, self._claim_folder(spec["persistentVolumeClaim"]["claimName"]))
        for kind, key, ref_name in (
            ("ConfigMap", "configMap", "name"),
            ("Secret", "secret", "secretName"),
        ):
            if key in spec:
                volume = Volume(name, self.root / "projected" / name, (kind, spec[key][ref_name]))
                self._project(spec, volume)
                return volume
        kinds = sorted(k for k in spec if k != "name")
        raise MountError(f"volume {name!r}: the test kubelet does not mount {kinds}")

    def _claim_folder(self, claim: str) -> Path:
        found = self.read("PersistentVolumeClaim", self.namespace, claim)
        if found is None:
            raise MountError(f'persistentvolumeclaim "{claim}" not found')
        volume_name = (found.get("spec") or {}).get("volumeName")
        if (found.get("status") or {}).get("phase") != "Bound" or not volume_name:
            raise MountError(f'persistentvolumeclaim "{claim}" is not bound')
        volume = self.read("PersistentVolume", None, volume_name) or {}
        spec = volume.get("spec") or {}
        local = spec.get("hostPath") or spec.get("local")
        if not local:
            raise MountError(
                f"persistentvolume {volume_name!r}: the test kubelet mounts hostPath and "
                "local volumes only"
            )
        path = Path(local["path"])
        if not path.is_dir():
            raise MountError(f"persistentvolume {volume_name!r}: {path} is not a folder")
        return path

    def _project(self, spec: Body, volume: Volume) -> None:
        assert volume.source is not None
        kind, ref = volume.source
        source = spec["configMap" if kind == "ConfigMap" else "secret"]
        obj = self.read(kind, self.namespace, ref)
        if obj is None:
            if source.get("optional"):
                obj = {"metadata": {"resourceVersion": "absent"}}
            else:
                raise MountError(f'{kind.lower()} "{ref}" not found')
        version = str(obj["metadata"].get("resourceVersion", ""))
        if version == volume.version:
            return
        files = _files(kind, obj, source)
        self._write_atomically(volume.path, files)
        volume.version = version

    def _write_atomically(self, folder: Path, files: dict[str, tuple[bytes, int]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._own(folder, 0o755)
        stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
        fresh = folder / stamp
        fresh.mkdir()
        for relative, (content, mode) in files.items():
            target = fresh / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            self._own(target, mode)
        self._own(fresh, 0o755)
        link = folder / DATA_LINK
        previous = os.readlink(link) if link.is_symlink() else None
        staged = folder / "..data_tmp"
        staged.unlink(missing_ok=True)
        staged.symlink_to(stamp)
        staged.replace(link)
        tops = {relative.split("/", 1)[0] for relative in files}
        for top in tops:
            entry = folder / top
            if not entry.is_symlink():
                entry.symlink_to(f"{DATA_LINK}/{top}")
        for entry in folder.iterdir():
            if not entry.name.startswith("..") and entry.name not in tops:
                entry.unlink()
        if previous is not None and previous != stamp:
            shutil.rmtree(folder / previous, ignore_errors=True)

    def _own(self, path: Path, mode: int) -> None:
        if os.geteuid() == 0:
            os.chown(path, 0, self.fs_group if self.fs_group is not None else 0)
        path.chmod(mode)


def _files(kind: str, obj: Body, source: Body) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mode) of a configMap or secret volume."""
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    default = int(source.get("defaultMode", DEFAULT_MODE))
    items = source.get("items")
    if not items:
        return {key: (content, default) for key, content in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise MountError(
                f"{kind.lower()} {obj['metadata'].get('name')!r} has no key {item['key']!r}"
            )
        files[item["path"]] = (data[item["key"]], int(item.get("mode", default)))
    return files
