"""The memory this process may use, as its container sets it (Linux control groups, v1 and v2).

Gradescope runs an autograder in a container with a memory limit (768 MB by default). When the
processes inside use more, the kernel's out-of-memory killer ends one of them with SIGKILL, and
a grader that does not look sees only "killed by SIGKILL". This module finds the limit, the
memory in use and the number of such kills, so that the runner can keep a student's worker
under the limit and name an out-of-memory kill as such.

Everything here reads files and never raises: on another platform, or where the files cannot be
read, the answers are None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_UNLIMITED = 1 << 60  # v1 writes "no limit" as a huge number (9223372036854771712)


@dataclass(frozen=True)
class MemoryGroup:
    """The control group that holds this process's memory: its folder, and the cgroup version."""

    folder: Path
    version: int

    def _read(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text()
        except OSError:
            return None

    def _int(self, name: str) -> int | None:
        text = self._read(name)
        try:
            return int(text.strip()) if text is not None else None
        except ValueError:  # "max" (v2: no limit)
            return None

    def limit(self) -> int | None:
        """The smallest memory limit on the way from this group up to the hierarchy's root."""
        best = None
        folder = self.folder
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        while True:
            value = MemoryGroup(folder, self.version)._int(name)
            if value is not None and value < _UNLIMITED and (best is None or value < best):
                best = value
            if folder.parent == folder or not (folder.parent / name).exists():
                return best
            folder = folder.parent

    def _stat(self) -> dict[str, int]:
        out = {}
        for line in (self._read("memory.stat") or "").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def working_set(self) -> int | None:
        """Memory in use that the kernel cannot simply drop: usage less inactive file cache
        (the figure the kernel's limit is effectively enforced against; page cache of shared
        libraries fills the rest of the limit and is reclaimed on demand)."""
        usage = self._int("memory.current" if self.version == 2 else "memory.usage_in_bytes")
        if usage is None:
            return None
        stat = self._stat()
        inactive = stat.get("inactive_file" if self.version == 2 else "total_inactive_file", 0)
        return max(0, usage - inactive)

    def oom_kills(self) -> int | None:
        """How many processes of this group the out-of-memory killer has ended so far."""
        text = self._read("memory.events" if self.version == 2 else "memory.oom_control") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return None


def _mounts() -> list[tuple[str, str, str, str]]:
    """(root inside the hierarchy, mount point, file system type, super options) per mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) >= 3:
            out.append((fields[3], fields[4], after[0], after[2]))
    return out


def memory_group(pid: int | str = "self") -> MemoryGroup | None:
    """The memory control group of a process (this one by default), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    mounts = _mounts()
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            candidates = [(root, point) for root, point, kind, _ in mounts if kind == "cgroup2"]
            version = 2
        elif "memory" in controllers.split(","):
            candidates = [(root, point) for root, point, kind, options in mounts
                          if kind == "cgroup" and "memory" in options.split(",")]
            version = 1
        else:
            continue
        for root, point in candidates:
            relative = os.path.relpath(path, root) if path.startswith(root) else None
            if relative is None or relative.startswith(".."):
                continue
            folder = Path(point) / ("" if relative == "." else relative)
            limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
            if (folder / limit_file).exists() or (version == 2 and (folder / "memory.current").exists()):
                return MemoryGroup(folder, version)
    return None


def memory_limit() -> int | None:
    """The memory limit of this process's container, in bytes; None when there is none."""
    group = memory_group()
    return group.limit() if group else None


def cpu_limit() -> float | None:
    """How many CPUs this process may use: the container's CPU quota (cgroup v1 or v2) or the
    CPUs it may run on, whichever is smaller; None when neither can be read."""
    counts = []
    if hasattr(os, "sched_getaffinity"):
        counts.append(float(len(os.sched_getaffinity(0))))
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    mounts = _mounts()
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        v2 = hierarchy == "0" and controllers == ""
        if not v2 and "cpu" not in controllers.split(","):
            continue
        for root, point, kind, options in mounts:
            if (kind != "cgroup2") if v2 else (kind != "cgroup" or "cpu" not in options.split(",")):
                continue
            if not path.startswith(root):
                continue
            folder = Path(point) / os.path.relpath(path, root)
            while True:
                quota = _quota(folder, v2)
                if quota is not None:
                    counts.append(quota)
                if folder == Path(point) or folder.parent == folder:
                    break
                folder = folder.parent
    return min(counts) if counts else None


def _quota(folder: Path, v2: bool) -> float | None:
    try:
        if v2:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


# -------------------------------------------------------------------------------------------
# Making a container like Gradescope's, to measure and test under its limits (needs root and a
# writable cgroup file system; these raise OSError elsewhere)

GRADESCOPE_MEMORY = 768 * 1024**2
GRADESCOPE_CPUS = 0.5


@dataclass
class LimitedGroup:
    """A fresh control group with a memory limit and a CPU quota. ``enter`` (as a subprocess's
    ``preexec_fn``) puts the child, and all it starts, inside; ``peak`` is the most memory the
    group has used; ``remove`` deletes it once its processes have ended."""

    memory: Path
    cpu: Path
    v2: bool

    def enter(self) -> None:
        for folder in {self.memory, self.cpu}:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int((self.memory / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        for folder in {self.memory, self.cpu}:
            try:
                folder.rmdir()
            except OSError:
                pass


def limited_group(memory: int = GRADESCOPE_MEMORY, cpus: float = GRADESCOPE_CPUS,
                  name: str | None = None) -> LimitedGroup:
    """Create a control group limited to ``memory`` bytes and ``cpus`` CPUs (v1 or v2)."""
    import uuid

    name = name or f"course-{uuid.uuid4().hex[:8]}"
    period, quota = 100_000, int(cpus * 100_000)
    errors = []
    for memory_root, cpu_root in ((Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/cpu")),
                                  (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup"))):
        try:
            if (memory_root / "memory.limit_in_bytes").exists():  # v1
                (memory_root / name).mkdir()
                (memory_root / name / "memory.limit_in_bytes").write_text(str(memory))
                (cpu_root / name).mkdir(exist_ok=True)
                (cpu_root / name / "cpu.cfs_period_us").write_text(str(period))
                (cpu_root / name / "cpu.cfs_quota_us").write_text(str(quota))
                return LimitedGroup(memory_root / name, cpu_root / name, v2=False)
            if (memory_root / "cgroup.controllers").exists():  # v2
                (memory_root / name).mkdir()
                (memory_root / name / "memory.max").write_text(str(memory))
                (memory_root / name / "cpu.max").write_text(f"{quota} {period}")
                return LimitedGroup(memory_root / name, memory_root / name, v2=True)
        except OSError as exc:
            errors.append(f"{memory_root}: {exc}")
    raise OSError("cannot create a control group here (needs root and a writable cgroup file "
                  "system): " + ("; ".join(errors) or "no cgroup file system found"))
